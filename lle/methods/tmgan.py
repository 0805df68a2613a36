"""tmgan: end-to-end tone mapping of low-light images with a lightness GAN (Montulet & Briassouli 2019).

Only lightness is enhanced (sec. 2): the generator sees the input's CIELAB L / 100 and predicts L; the
output image is that L with the input's own a and b (`generator.chroma = "input"`), or with a and b
scaled as the change of lightness implies (`"scaled"`, see `with_lightness`), converted back to sRGB.
Evaluation and enhancement go through this path, so held-out scores are on RGB images, as the paper's
Table 1; the losses see lightness only.

Losses (sec. 2.1-2.2): the generator minimises w_p VGG(L) + w_mse MSE(L) + w_adv mean((D(G) - 1)^2);
the discriminator, a PatchGAN, is trained LSGAN-style: 0.5 [mean((D(real) - 1)^2) + mean((D(fake) + 1)^2)],
+1 meaning real and -1 fake (sec. 2.2). One generator step, then one discriminator step on the updated
generator's output. The step's metrics hold each generator term raw and weighted (`weighted_mse`,
`weighted_perceptual`, `weighted_adversarial`): the trainer logs the first step alone, so a run's
metrics.jsonl opens with the three terms' sizes at initialisation.
"""
import functools

import jax
import jax.numpy as jnp

from lle import baselines, color, losses, optim, precision
from lle.methods import Method, NetState
from lle.nn.layers import layer_forms
from lle.nn.tmgan import LightnessUNet, PatchDiscriminator

TANH_TO_L = ("affine", "positive")
CHROMA = ("input", "scaled")

# Loss weights whose terms read pretrained VGG weights (not part of the trained networks): `summary`
# sets them to 0, so that it needs no weights file.
FEATURE_LOSS_WEIGHTS = ("loss.perceptual_weight",)


def generator(config) -> LightnessUNet:
  g = config.generator
  return LightnessUNet(features=tuple(g.features), kernel_size=g.kernel_size, negative_slope=g.negative_slope,
                       norm_epsilon=g.norm_epsilon, upsampling=g.upsampling, kernel_init=g.kernel_init,
                       forms=layer_forms(config))


def discriminator(config) -> PatchDiscriminator:
  d = config.discriminator
  return PatchDiscriminator(features=tuple(d.features), kernel_size=d.kernel_size,
                            negative_slope=d.negative_slope, norm_epsilon=d.norm_epsilon,
                            kernel_init=d.kernel_init, forms=layer_forms(config))


def tanh_to_lightness(t, mapping: str):
  """The generator's tanh output -> L / 100. 'affine': (t + 1) / 2, tanh's whole range onto L's [0, 100]
  (pix2pix scales images to [-1, 1]); 'positive': max(t, 0), L / 100 read directly (tanh's negative half
  unused)."""
  if mapping == "affine":
    return 0.5 * (t + 1.0)
  if mapping == "positive":
    return jnp.maximum(t, 0.0)
  raise ValueError(f"unknown generator.tanh_to_lightness {mapping!r}; expected one of {TANH_TO_L}")


def lightness(rgb):
  """sRGB [..., 3] in [0, 1] -> L / 100 [..., 1]."""
  return color.srgb_to_lab(jnp.clip(rgb, 0.0, 1.0))[..., :1] / 100.0


def with_lightness(rgb, light, *, chroma: str = "input", chroma_floor: float = 0.0):
  """The image `rgb` [..., 3] with its CIELAB L replaced by 100 `light` [..., 1], back in sRGB.

  chroma="input": a and b kept as they are. A darkened input has smaller a and b than the scene (a
  d-times darker exposure multiplies them by d^(-1/3) where L > 8, by 1/d below), so the result keeps
  the dark input's weaker colour.
  chroma="scaled": a and b changed as the change of exposure that takes the input's L to the new L
  changes them: the input's linear RGB, plus `chroma_floor` of neutral grey in each channel, multiplied
  by Y_new / Y_in (so that its L is the new L), then clipped to the sRGB gamut. Where both lightnesses
  are above 8 (CIELAB's cube-root part) a and b are multiplied by (L_new + 16) / (L_in + 16), below by
  the luminance ratio. The floor makes a pixel that the input holds as black (no colour to keep) grey,
  and bounds the gain at Y_new / floor.
  """
  if chroma not in CHROMA:
    raise ValueError(f"unknown generator.chroma {chroma!r}; expected one of {CHROMA}")
  rgb = jnp.clip(rgb, 0.0, 1.0)
  if chroma == "input":
    lab = color.srgb_to_lab(rgb)
    return color.lab_to_srgb(jnp.concatenate([100.0 * light, lab[..., 1:]], axis=-1))
  linear = color.srgb_to_linear(rgb) + chroma_floor
  gain = color.lightness_to_y(100.0 * light[..., 0]) / color.linear_to_y(linear)
  return color.linear_to_srgb(linear * gain[..., None])


def _discriminator_input(config, light_in, light):
  # pix2pix [9]'s conditional D sees the input beside the image it judges; the paper does not say.
  return jnp.concatenate([light_in, light], axis=-1) if config.discriminator.conditional else light


def _vgg_layer(config) -> str:
  from lle.nn import vgg
  p = config.loss.perceptual
  return vgg.nth_layer(p.depth, p.num_layers, p.layer_counting)


def init(rng, *, config):
  vgg_params = None
  if config.loss.perceptual_weight:
    # The VGG weights ride in the state (not closed over: constants would be folded into every compiled
    # step); only the convolutions up to the loss's layer. A missing file stops here, before any network
    # is built, with how to get it.
    from lle import weights
    from lle.nn import vgg
    params, _, _ = weights.load(config.loss.perceptual.weights)
    layer = _vgg_layer(config)
    names = vgg.layer_names(config.loss.perceptual.depth)
    used = {n for n in names[:names.index(layer) + 1] if n.startswith("conv")}
    vgg_params = {n: {k: jnp.asarray(v) for k, v in params[n].items()} for n in used}
  size = config.data.crop_size
  g_rng, d_rng = jax.random.split(rng)
  g_module, d_module = generator(config), discriminator(config)
  d_channels = 2 if config.discriminator.conditional else 1
  state = {
      "gen": NetState.create(apply_fn=precision.apply_fn(g_module, config), tx=optim.make(config.optimizer),
                             params=g_module.init(g_rng, jnp.zeros((1, size, size, 1)))["params"]),
      "disc": NetState.create(apply_fn=precision.apply_fn(d_module, config), tx=optim.make(config.optimizer),
                              params=d_module.init(d_rng, jnp.zeros((1, size, size, d_channels)))["params"]),
  }
  if vgg_params is not None:
    state["vgg"] = vgg_params
  return state


def _perceptual_fn(config):
  from lle import weights
  from lle.nn import vgg
  p = config.loss.perceptual
  layer = _vgg_layer(config)
  preprocess = weights.preprocess_of(p.weights)
  forms = layer_forms(config)
  return lambda vgg_params, pred, target: losses.perceptual(
      pred, target, features=vgg.frozen_features(vgg_params, depth=p.depth, taps=(layer,), forms=forms),
      layer=layer, preprocess=preprocess, distance=p.distance)


def train_step(state, batch, rng, *, config):
  del rng  # no dropout or noise
  lc = config.loss
  mapping = config.generator.tanh_to_lightness
  light_in, light_target = lightness(batch["input"]), lightness(batch["target"])
  gen, disc = state["gen"], state["disc"]
  perceptual = _perceptual_fn(config) if lc.perceptual_weight else None
  real_in = _discriminator_input(config, light_in, light_target)

  def gen_loss(params):
    light = tanh_to_lightness(gen.apply_fn({"params": params}, light_in), mapping)
    mse = jnp.mean(jnp.square(light - light_target))
    adv = jnp.mean(jnp.square(disc.apply_fn({"params": disc.params},
                                            _discriminator_input(config, light_in, light)) - 1.0))
    terms = {"mse": mse, "g_adversarial": adv, "weighted_mse": lc.mse_weight * mse,
             "weighted_adversarial": lc.adversarial_weight * adv}
    if perceptual is not None:
      terms["perceptual"] = perceptual(state["vgg"], light, light_target)
      terms["weighted_perceptual"] = lc.perceptual_weight * terms["perceptual"]
    return sum(v for k, v in terms.items() if k.startswith("weighted_")), terms

  (g_loss, metrics), g_grads = jax.value_and_grad(gen_loss, has_aux=True)(gen.params)
  gen = gen.apply_gradients(grads=g_grads)
  fake = jax.lax.stop_gradient(tanh_to_lightness(gen.apply_fn({"params": gen.params}, light_in), mapping))
  fake_in = _discriminator_input(config, light_in, fake)

  def disc_loss(params):
    d_real = disc.apply_fn({"params": params}, real_in)
    d_fake = disc.apply_fn({"params": params}, fake_in)
    loss = 0.5 * (jnp.mean(jnp.square(d_real - 1.0)) + jnp.mean(jnp.square(d_fake + 1.0)))
    return loss, (d_real.mean(), d_fake.mean())

  (d_loss, (d_real, d_fake)), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc.params)
  new_state = dict(state, gen=gen, disc=disc.apply_gradients(grads=d_grads))
  metrics.update(g_loss=g_loss, d_loss=d_loss, d_score_real=d_real, d_score_fake=d_fake,
                 learning_rate=optim.schedule(config.optimizer)(state["gen"].step))
  return new_state, metrics


def predict(state, images, *, config):
  """RGB [N, H, W, 3] -> RGB: the predicted lightness, with a and b as `generator.chroma` says."""
  gen, g = state["gen"], config.generator
  light = tanh_to_lightness(gen.apply_fn({"params": gen.params}, lightness(images)), g.tanh_to_lightness)
  return with_lightness(images, light, chroma=g.chroma, chroma_floor=g.chroma_floor)


def networks(state, *, config):
  size = config.data.crop_size
  d_channels = 2 if config.discriminator.conditional else 1
  out = {}
  for name, channels in (("gen", 1), ("disc", d_channels)):
    net = state[name]
    apply = functools.partial(lambda n, x: n.apply_fn({"params": n.params}, x), net)
    out[name] = (net.params, apply, (1, size, size, channels))
  return out


def make(config) -> Method:
  # No `tiling`: instance normalisation makes every output pixel depend on the whole image (each layer's
  # mean and variance), so no window holds what the one-pass result needs; images run in one pass.
  return Method(
      init=functools.partial(init, config=config),
      train_step=functools.partial(train_step, config=config),
      predict=functools.partial(predict, config=config),
      networks=functools.partial(networks, config=config),
      baselines=baselines.low_light(config),
      size_multiple=2 ** len(config.generator.features),
  )

"""IQE: Adlakha et al. 2021, "Low-Light Image Quality Enhancement using Deep Convolutional Generative
Adversarial Network", the DPED model (Ignatov et al. 2017, code aiff22/DPED) that it re-types.

Generator: a full-resolution residual CNN (`lle.nn.iqe.Generator`). Discriminator: a CNN on grey patches,
fed per sample either the enhanced image or the target photo (a random swap) and trained by cross-entropy
to tell which. The generator's loss is content (VGG-19 relu5_4) + texture (adversarial) + colour (blurred
images) + total variation, each weighted by the config. Each iteration: one generator step, then one
discriminator step on the updated generator's output (DPED's training loop).
"""
import functools

import jax
import jax.numpy as jnp

from lle import baselines, losses, optim, precision
from lle.methods import Method, NetState, Tiling
from lle.nn import vgg as vgg_lib
from lle.nn.iqe import Discriminator, Generator
from lle.nn.layers import layer_forms

# Loss weights whose terms read pretrained VGG weights (not part of the trained networks): `summary`
# sets them to 0, so that it needs no weights file.
FEATURE_LOSS_WEIGHTS = ("loss.content_weight",)


def generator(config) -> Generator:
  g = config.generator
  return Generator(features=g.features, num_blocks=g.num_blocks, norm=g.norm, norm_epsilon=g.norm_epsilon,
                   bn_momentum=g.bn_momentum, output_scale=g.output_scale, output_offset=g.output_offset,
                   kernel_init=g.kernel_init, bias_init=g.bias_init, forms=layer_forms(config))


def discriminator(config) -> Discriminator:
  d = config.discriminator
  return Discriminator(conv_features=tuple(d.conv_features), kernel_sizes=tuple(d.kernel_sizes),
                       strides=tuple(d.strides), fc_features=d.fc_features, negative_slope=d.negative_slope,
                       norm=d.norm, norm_epsilon=d.norm_epsilon, bn_momentum=d.bn_momentum,
                       kernel_init=d.kernel_init, bias_init=d.bias_init, forms=layer_forms(config))


def uses_vgg(config) -> bool:
  return config.loss.content_weight != 0


def load_vgg(config):
  """(params, preprocess) of the content loss's VGG-19; the error of `lle.weights.load` (naming the file
  to convert and the command) when they are missing: never random features."""
  from lle import weights
  params, preprocess, meta = weights.load(config.loss.vgg_weights)
  if meta["depth"] != 19:
    raise weights.WeightsError(f"{config.loss.vgg_weights}: a VGG-{meta['depth']}; the content loss needs VGG-19")
  return params, preprocess


def _net_state(module, rng, shape, tx, config):
  variables = module.init(rng, jnp.zeros(shape, jnp.float32), train=False)
  return NetState.create(apply_fn=precision.apply_fn(module, config), params=variables["params"],
                         batch_stats=variables.get("batch_stats", {}), tx=tx)


def init(rng, *, config, vgg_params=None):
  size = config.data.crop_size
  g_rng, d_rng = jax.random.split(rng)
  state = {"gen": _net_state(generator(config), g_rng, (1, size, size, 3), optim.make(config.optimizer), config),
           "disc": _net_state(discriminator(config), d_rng, (1, size, size, 1), optim.make(config.optimizer), config)}
  if vgg_params is not None:
    # Held in the state (never updated) so that the jitted step receives the weights as an argument:
    # closed over, they would be compiled in as constants.
    state["vgg"] = jax.tree.map(jnp.asarray, vgg_params)
  return state


def _apply(net: NetState, params, images, train: bool):
  variables = {"params": params}
  if net.batch_stats:
    variables["batch_stats"] = net.batch_stats
  if not train or not net.batch_stats:
    return net.apply_fn(variables, images, train=train), net.batch_stats
  out, updates = net.apply_fn(variables, images, train=True, mutable=["batch_stats"])
  return out, updates["batch_stats"]


def discriminator_input(enhanced, target, swap):
  """D's input and labels: per sample the grey target photo where swap = 1, else the grey enhanced image
  (DPED: enhanced * (1 - adv) + dslr * adv, on `rgb_to_grayscale`)."""
  s = swap[:, None, None, None]
  return losses.rgb_to_grey(enhanced) * (1.0 - s) + losses.rgb_to_grey(target) * s


def train_step(state, batch, rng, *, config, preprocess=None):
  lc = config.loss
  phone, target = batch["input"], batch["target"]
  gen, disc = state["gen"], state["disc"]
  kernel = losses.color_kernel(lc.color_kernel, lc.color_kernel_size, lc.color_sigma)
  forms = layer_forms(config)
  features = None
  if "vgg" in state:
    features = vgg_lib.frozen_features(state["vgg"], depth=19, taps=(lc.content_layer,),
                                       pool_padding=lc.vgg_pool_padding, forms=forms)

  def gen_loss(params):
    enhanced, g_stats = _apply(gen, params, phone, train=True)
    # D in training mode, as in DPED's graph; its statistics are updated by its own step only.
    logits, _ = _apply(disc, disc.params, losses.rgb_to_grey(enhanced), train=True)
    terms = {"texture": losses.texture_loss(logits, form=lc.texture_form),
             "color": losses.color_loss(enhanced, target, kernel=kernel, sum_scale=lc.color_sum_scale, forms=forms),
             "tv": losses.total_variation(enhanced, form=lc.tv_form)}
    loss = lc.texture_weight * terms["texture"] + lc.color_weight * terms["color"] + lc.tv_weight * terms["tv"]
    if features is not None:
      terms["content"] = losses.perceptual(enhanced, target, features=features, layer=lc.content_layer,
                                           preprocess=preprocess, distance=lc.content_distance)
      loss = loss + lc.content_weight * terms["content"]
    return loss, (g_stats, terms)

  (g_loss, (g_stats, metrics)), g_grads = jax.value_and_grad(gen_loss, has_aux=True)(gen.params)
  gen = gen.apply_gradients(grads=g_grads, batch_stats=g_stats)
  metrics["g_loss"] = g_loss

  # DPED draws a fresh batch for D's step; here D sees the same batch, through the updated generator.
  enhanced, _ = _apply(gen, gen.params, phone, train=True)
  enhanced = jax.lax.stop_gradient(enhanced)
  swap = jax.random.bernoulli(rng, 0.5, (phone.shape[0],)).astype(phone.dtype)
  d_input = discriminator_input(enhanced, target, swap)

  def disc_loss(params):
    logits, stats = _apply(disc, params, d_input, train=True)
    return losses.dped_cross_entropy(logits, swap), (stats, logits)

  (d_loss, (d_stats, logits)), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc.params)
  disc = disc.apply_gradients(grads=d_grads, batch_stats=d_stats)
  accuracy = jnp.mean((jnp.argmax(logits, -1) == (1 - swap).astype(jnp.int32)).astype(jnp.float32))
  metrics.update(d_loss=d_loss, d_accuracy=accuracy,
                 learning_rate=optim.schedule(config.optimizer)(state["gen"].step))
  return {**state, "gen": gen, "disc": disc}, metrics


def predict(state, images):
  return _apply(state["gen"], state["gen"].params, images, train=False)[0]


def halo(config) -> int:
  """Receptive-field radius of the generator: two 9x9 convolutions (4 each) and 2 x blocks + 2 3x3 (1 each)."""
  return 4 + 2 * config.generator.num_blocks + 2 + 4


def norm_statistics(state, image):
  """Instance norm normalises by statistics of the whole image: computed once per image (one pass over
  the image), then every window is normalised with them, which makes the windows' output exact."""
  gen = state["gen"]
  h, w = image.size
  pixels = jnp.asarray(image.sample(range(h), range(w)))
  _, sown = gen.apply_fn({"params": gen.params}, pixels, train=False, mutable=["norm_stats"])
  return {name: value["stats"][0] for name, value in sown["norm_stats"].items()}


def predict_window(state, windows, context, offsets, cores, image_size):
  del offsets, cores, image_size
  gen = state["gen"]
  return gen.apply_fn({"params": gen.params}, windows, train=False, norm_stats=context)


def networks(state, *, config):
  size = config.data.crop_size
  out = {}
  for name, channels in (("gen", 3), ("disc", 1)):
    net = state[name]
    apply = functools.partial(lambda n, x: _apply(n, n.params, x, train=False)[0], net)
    out[name] = (net.params, apply, (1, size, size, channels))
  return out


def make(config) -> Method:
  vgg_params = preprocess = None
  if uses_vgg(config):
    vgg_params, preprocess = load_vgg(config)
  instance = config.generator.norm == "instance"
  return Method(
      init=functools.partial(init, config=config, vgg_params=vgg_params),
      train_step=functools.partial(train_step, config=config, preprocess=preprocess),
      predict=predict,
      networks=functools.partial(networks, config=config),
      baselines=baselines.low_light(config),
      size_multiple=1,
      tiling=Tiling(halo=halo(config), context=norm_statistics if instance else None,
                    predict_window=predict_window if instance else None),
  )

"""iTMN: inverse tone mapping network with a generative adversarial regulariser (Ning et al. 2018).

Generator: U-Net, LDR -> HDR (encoded into [0, 1]). Discriminator: CNN + fully connected. Each training
iteration solves eq. 4 in order: one generator update on lambda * (MSE + alpha dMSE) + R(G, D_k), then one
discriminator update maximising R(G_{k+1}, D).
"""
import functools

import jax
import jax.numpy as jnp

from lle import baselines, losses, optim, precision
from lle.methods import Method, NetState, Tiling
from lle.nn.discriminator import ConvFCDiscriminator
from lle.nn.layers import layer_forms
from lle.nn.unet import UNet


def generator(config) -> UNet:
  g = config.generator
  return UNet(features=tuple(g.features), kernel_size=g.kernel_size, out_channels=3,
              negative_slope=g.negative_slope, bn_momentum=g.bn_momentum,
              output_activation=g.output_activation, kernel_init=g.kernel_init, forms=layer_forms(config))


def discriminator(config) -> ConvFCDiscriminator:
  d = config.discriminator
  return ConvFCDiscriminator(conv_features=tuple(d.conv_features), fc_features=tuple(d.fc_features),
                             kernel_size=d.kernel_size, negative_slope=d.negative_slope,
                             bn_momentum=d.bn_momentum, kernel_init=d.kernel_init, forms=layer_forms(config))


def _net_state(module, rng, shape, tx, config):
  variables = module.init(rng, jnp.zeros(shape, jnp.float32), train=False)
  return NetState.create(apply_fn=precision.apply_fn(module, config), params=variables["params"],
                         batch_stats=variables["batch_stats"], tx=tx)


def init(rng, *, config):
  shape = (1, config.data.crop_size, config.data.crop_size, 3)
  g_rng, d_rng = jax.random.split(rng)
  state = {"gen": _net_state(generator(config), g_rng, shape, optim.make(config.optimizer), config)}
  if config.loss.adversarial:
    state["disc"] = _net_state(discriminator(config), d_rng, shape, optim.make(config.optimizer), config)
  return state


def _apply_train(net: NetState, params, images):
  out, updates = net.apply_fn({"params": params, "batch_stats": net.batch_stats}, images, train=True,
                              mutable=["batch_stats"])
  return out, updates["batch_stats"]


DISCRIMINATOR_BATCHES = ("separate", "joint")


def discriminate(disc: NetState, params, real, fake, *, batches: str):
  """D's logits on real and generated images in training mode, and D's updated batch statistics.

  'separate': one pass per kind, each normalised by its own batch's statistics; the running statistics
  are updated after each pass (twice per call). 'joint': one pass over [real; fake], whose statistics
  mix both kinds; one update. `real=None` (separate only): the generated images alone.
  """
  if batches == "separate":
    stats = disc.batch_stats
    real_logits = None
    if real is not None:
      real_logits, stats = _apply_train(disc, params, real)
    fake_logits, stats = _apply_train(disc.replace(batch_stats=stats), params, fake)
    return real_logits, fake_logits, stats
  if batches == "joint":
    logits, stats = _apply_train(disc, params, jnp.concatenate([real, fake], axis=0))
    return logits[:real.shape[0]], logits[real.shape[0]:], stats
  raise ValueError(f"unknown discriminator.batches {batches!r}; expected one of {DISCRIMINATOR_BATCHES}")


def train_step(state, batch, rng, *, config):
  del rng  # iTMN's networks have no dropout or noise
  lc = config.loss
  ldr, hdr = batch["input"], batch["target"]
  gen, disc = state["gen"], state.get("disc")
  d_batches = config.discriminator.batches if disc is not None else None

  def gen_loss(params):
    fake, g_stats = _apply_train(gen, params, ldr)
    mse = losses.mse(fake, hdr, reduction=lc.reduction)
    dmse = losses.dmse(fake, hdr, reduction=lc.reduction)
    content = mse + lc.alpha * dmse
    terms = {"mse": mse, "dmse": dmse, "content": content}
    loss = lc.lam * content
    if disc is not None:
      # D_k judges G's output in training mode; D's statistics are updated by its own step below. With
      # separate batches E[log(1 - D(H))] does not depend on G and is left out; with a joint batch it
      # does (through the shared statistics), and R is taken whole.
      real_logits, fake_logits, _ = discriminate(disc, disc.params, hdr if d_batches == "joint" else None,
                                                 fake, batches=d_batches)
      adv = losses.itmn_generator_adversarial(fake_logits, form=lc.generator_adversarial,
                                              real_logits=real_logits)
      loss = loss + lc.adversarial_weight * adv
      terms["g_adversarial"] = adv
    return loss, (g_stats, terms)

  (g_loss, (g_stats, metrics)), g_grads = jax.value_and_grad(gen_loss, has_aux=True)(gen.params)
  gen = gen.apply_gradients(grads=g_grads, batch_stats=g_stats)
  metrics["g_loss"] = g_loss
  new_state = {"gen": gen}

  if disc is not None:
    fake, _ = _apply_train(gen, gen.params, ldr)  # G_{k+1}(L), eq. 4
    fake = jax.lax.stop_gradient(fake)

    def disc_loss(params):
      real_logits, fake_logits, stats = discriminate(disc, params, hdr, fake, batches=d_batches)
      reg = losses.itmn_regularizer(real_logits, fake_logits)
      return -reg, (stats, jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    (d_loss, (d_stats, d_real, d_fake)), d_grads = jax.value_and_grad(disc_loss, has_aux=True)(disc.params)
    new_state["disc"] = disc.apply_gradients(grads=d_grads, batch_stats=d_stats)
    metrics.update(d_loss=d_loss, d_prob_fake_on_real=d_real, d_prob_fake_on_fake=d_fake)

  metrics["learning_rate"] = optim.schedule(config.optimizer)(state["gen"].step)
  return new_state, metrics


def predict(state, images):
  gen = state["gen"]
  return gen.apply_fn({"params": gen.params, "batch_stats": gen.batch_stats}, images, train=False)


def networks(state, *, config):
  size = config.data.crop_size
  out = {}
  for name in state:
    net = state[name]
    apply = functools.partial(lambda n, x: n.apply_fn({"params": n.params, "batch_stats": n.batch_stats},
                                                      x, train=False), net)
    out[name] = (net.params, apply, (1, size, size, 3))
  return out


def halo(config) -> int:
  """Receptive-field radius of the generator in input pixels, rounded up to the size multiple. A k x k
  stride-2 conv with padding p at input stride s reaches s * max(p, k - 2 - p) beyond the pixel's
  footprint; a k x k stride-2 transposed conv (padding p' = (k - 2) / 2) reaches f * max(k - 1 - p', p' + 1)
  at output stride f; a skip concatenation takes the larger field."""
  k, levels = config.generator.kernel_size, len(config.generator.features)
  pad, up_pad = (k - 1) // 2, (k - 2) // 2
  encoder, radius = [], 0
  for i in range(levels):
    radius += 2**i * max(pad, k - 2 - pad)
    encoder.append(radius)
  for i in reversed(range(levels)):  # up-convolution i returns from stride 2^(i + 1) to 2^i
    skip = encoder[i] if i < levels - 1 else 0
    radius = max(radius, skip) + 2**i * max(k - 1 - up_pad, up_pad + 1)
  multiple = 2**levels
  return -(-radius // multiple) * multiple


def make(config) -> Method:
  return Method(
      init=functools.partial(init, config=config),
      train_step=functools.partial(train_step, config=config),
      predict=predict,
      networks=functools.partial(networks, config=config),
      baselines=baselines.inverse_tone_mapping(config),
      size_multiple=2 ** len(config.generator.features),
      tiling=Tiling(halo=halo(config)),
  )

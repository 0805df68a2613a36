"""NEID: Jiang et al. 2021, "Bridge the Vision Gap from Field to Command: A Deep Learning Network
Enhancing Illumination and Details" (no public code).

One network (`lle.nn.neid.NEID`) trained end to end on eq. 7: Huber(LE) + lambda_1 MSE(DR) + lambda_2
Color(LE). The model sees a low-resolution input and returns an image `scale` times larger; DR's
super-resolution head is used only by the training loss and skipped by `predict`.
"""
import functools

import jax
import jax.numpy as jnp
from flax.training import train_state

from lle import baselines, losses, optim, precision
from lle.methods import Method, Tiling
from lle.nn.layers import layer_forms
from lle.nn.neid import NEID


def network(config) -> NEID:
  m = config.model
  return NEID(features=tuple(m.features), kernel_size=m.kernel_size, kernel_init=m.kernel_init,
              upsample=m.upsample, detail_refinement=m.detail_refinement, feature_fusing=m.feature_fusing,
              attention_reduction=m.attention_reduction, scale=config.data.input_scale, forms=layer_forms(config))


def init(rng, *, config):
  module = network(config)
  size = config.data.crop_size // config.data.input_scale
  params = module.init(rng, jnp.zeros((1, size, size, 3), jnp.float32), with_dr=True)["params"]
  return {"net": train_state.TrainState.create(apply_fn=precision.apply_fn(module, config), params=params,
                                               tx=optim.make(config.optimizer))}


def loss_terms(le, dr, batch, *, config):
  lc = config.loss
  target = batch["target"]
  terms = {"huber": losses.huber(le, target, delta=lc.huber_delta),
           "color": losses.hsv_color_loss(le, target, hue=lc.hue)}
  loss = terms["huber"] + lc.color_weight * terms["color"]
  if dr is not None:
    if lc.dr_target not in ("low", "high"):
      raise ValueError(f"unknown config.loss.dr_target {lc.dr_target!r}; expected 'low' or 'high'")
    dr_target = {"high": target, "low": batch.get("input_hr")}[lc.dr_target]
    if dr_target is None:
      raise KeyError("config.loss.dr_target='low' needs the batch key 'input_hr' (the full-size low-light "
                     f"patch of the 'neid' data recipe); the batch has {sorted(batch)}")
    terms["mse_dr"] = losses.mse(dr, dr_target)
    loss = loss + lc.mse_weight * terms["mse_dr"]
  return loss, terms


def train_step(state, batch, rng, *, config):
  del rng  # no dropout or noise
  net = state["net"]

  def loss_fn(params):
    le, dr = net.apply_fn({"params": params}, batch["input"], with_dr=True)
    return loss_terms(le, dr, batch, config=config)

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
  metrics = {"loss": loss, **terms, "learning_rate": optim.schedule(config.optimizer)(net.step)}
  return {"net": net.apply_gradients(grads=grads)}, metrics


def predict(state, images):
  """LE's output only: DR's super-resolution head is not evaluated (nor its parameters read)."""
  net = state["net"]
  return net.apply_fn({"params": net.params}, images)


def inference_params(params, *, config):
  """The parameters `predict` reads: all but DR's head (and DR's decoder too when FF does not use it)."""
  unused = {"dr_head"} if config.model.feature_fusing else {"dr_head", "dr_decoder"}
  return {k: v for k, v in params.items() if k not in unused}


def networks(state, *, config):
  """The inference network (what `summary` counts); DR's training-only parameters are left out."""
  net = state["net"]
  size = config.data.crop_size // config.data.input_scale
  params = inference_params(net.params, config=config)
  return {"net": (params, lambda x: net.apply_fn({"params": params}, x), (1, size, size, 3))}


def halo(config) -> int:
  """Receptive-field radius of the network in input pixels (FF's pooling aside: see `pooled_dr`),
  rounded up to the size multiple. A feature pixel at stride s grows its field by (k // 2) s per k x k
  convolution; pooling adds nothing beyond the pooled pixel's own footprint; a 2x up-convolution (1 x 1
  conv + depth-to-space) lets a fine pixel see its coarse pixel's field, s / 2 further; a skip
  concatenation takes the larger field; FF mixes in the DR feature of the same level."""
  m = config.model
  reach = m.kernel_size // 2
  levels = len(m.features)
  encoder, radius = [], 0
  for i in range(levels):
    radius += 2 * reach * 2**i  # DoubleConv at stride 2^i
    encoder.append(radius)
  dr = le = encoder[-1]
  for level in reversed(range(levels - 1)):
    dr = max(dr + 2**level, encoder[level]) + 2 * reach * 2**level
    skip = max(encoder[level], dr) if m.feature_fusing else encoder[level]
    le = max(le + 2**level, skip) + 2 * reach * 2**level
  if m.upsample:
    le += reach  # LE's sub-pixel head: a k x k conv at the input's resolution, then depth-to-space
  multiple = 2 ** (levels - 1)
  return -(-le // multiple) * multiple


def pooled_dr(state, image):
  """FF's image-global step, once per image: DR's decoder features averaged over the whole image, one
  [1, C] per level (finest first), summed window by window over the cores (which tile the image)."""
  height, width = image.size
  sums = None
  for windows, _, cores in image.batches():
    part = _dr_core_sums(state, jnp.asarray(windows), jnp.asarray(cores))
    sums = part if sums is None else [a + b for a, b in zip(sums, part)]
  return [s / ((height // 2**level) * (width // 2**level)) for level, s in enumerate(sums)]


@jax.jit
def _dr_core_sums(state, windows, cores):
  """Per level, the sum of DR's features over each window's core, summed over windows: [1, C]."""
  net = state["net"]
  levels = net.apply_fn({"params": net.params}, windows, dr_features_only=True)
  sums = []
  for level, feats in enumerate(levels):
    c = cores // 2**level  # cores sit on the size multiple, so they fall on every level's grid
    rows, cols = jnp.arange(feats.shape[1]), jnp.arange(feats.shape[2])
    inside = (((rows[None] >= c[:, :1]) & (rows[None] < c[:, 2:3]))[:, :, None]
              & ((cols[None] >= c[:, 1:2]) & (cols[None] < c[:, 3:]))[:, None, :])
    sums.append(jnp.sum(jnp.where(inside[..., None], feats, 0.0), axis=(0, 1, 2))[None])
  return sums


def predict_window(state, windows, context, offsets, cores, image_size):
  del offsets, cores, image_size
  net = state["net"]
  params = {"params": net.params}
  if context is None:
    return net.apply_fn(params, windows)
  pooled = [jnp.broadcast_to(p, (windows.shape[0], p.shape[-1])) for p in context]
  return net.apply_fn(params, windows, pooled_dr=pooled)


def upsampled_input(x, *, scale: int):
  """The identity baseline at the output's size: the input, bicubic-upsampled `scale` times."""
  if scale == 1:
    return x
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, h * scale, w * scale, c), "cubic")


def make(config) -> Method:
  return Method(
      init=functools.partial(init, config=config),
      train_step=functools.partial(train_step, config=config),
      predict=predict,
      networks=functools.partial(networks, config=config),
      baselines=baselines.low_light(config, prepare=functools.partial(upsampled_input, scale=config.data.input_scale)),
      size_multiple=2 ** (len(config.model.features) - 1),
      tiling=Tiling(halo=halo(config), output_scale=config.data.input_scale if config.model.upsample else 1,
                    context=pooled_dr if config.model.feature_fusing else None, predict_window=predict_window),
  )

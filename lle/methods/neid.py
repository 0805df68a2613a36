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

from lle import losses, optim
from lle.methods import Method
from lle.nn.neid import NEID


def network(config) -> NEID:
  m = config.model
  return NEID(features=tuple(m.features), kernel_size=m.kernel_size, kernel_init=m.kernel_init,
              upsample=m.upsample, detail_refinement=m.detail_refinement, feature_fusing=m.feature_fusing,
              attention_reduction=m.attention_reduction, scale=config.data.input_scale)


def init(rng, *, config):
  module = network(config)
  size = config.data.crop_size // config.data.input_scale
  params = module.init(rng, jnp.zeros((1, size, size, 3), jnp.float32), with_dr=True)["params"]
  return {"net": train_state.TrainState.create(apply_fn=module.apply, params=params,
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
      baselines={"identity": functools.partial(upsampled_input, scale=config.data.input_scale)},
      size_multiple=2 ** (len(config.model.features) - 1),
  )

"""GLADNet: Wang et al. 2018, "GLADNet: Low-Light Enhancement Network with Global Awareness" (FG).

One network (`lle.nn.gladnet.GLADNet`) trained with a channel-weighted L1 loss; inference is one pass at
the input's full size (the global branch always works on a fixed-size copy, so any size is accepted).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax.training import train_state

from lle import baselines, losses, optim, precision
from lle.methods import Method, Tiling
from lle.nn.gladnet import GLADNet, nearest_source
from lle.nn.layers import layer_forms


def network(config) -> GLADNet:
  m = config.model
  return GLADNet(num_blocks=m.num_blocks, global_size=m.global_size, global_features=m.global_features,
                 detail_features=tuple(m.detail_features), kernel_size=m.kernel_size,
                 output_activation=m.output_activation, kernel_init=m.kernel_init, forms=layer_forms(config))


def init(rng, *, config):
  module = network(config)
  size = config.data.crop_size
  params = module.init(rng, jnp.zeros((1, size, size, 3), jnp.float32))["params"]
  return {"net": train_state.TrainState.create(apply_fn=precision.apply_fn(module, config), params=params,
                                               tx=optim.make(config.optimizer))}


def train_step(state, batch, rng, *, config):
  del rng  # no dropout or noise
  net = state["net"]

  def loss_fn(params):
    out = net.apply_fn({"params": params}, batch["input"])
    return losses.weighted_l1(out, batch["target"], channel_weights=tuple(config.loss.channel_weights))

  loss, grads = jax.value_and_grad(loss_fn)(net.params)
  metrics = {"loss": loss, "learning_rate": optim.schedule(config.optimizer)(net.step)}
  return {"net": net.apply_gradients(grads=grads)}, metrics


def predict(state, images):
  net = state["net"]
  return net.apply_fn({"params": net.params}, images)


def halo(config) -> int:
  """Receptive-field radius of the detail step: its convolutions (4 + the output conv in the code)."""
  m = config.model
  return (len(m.detail_features) + 1) * (m.kernel_size // 2)


def illumination(state, image, *, config):
  """The global branch, once per image: on the `global_size` nearest-resized copy of the whole image
  (the same pixels `resize_nearest` picks), [1, global_size, global_size, global_features], with the
  float32 scales (global_size / H, global_size / W) of the resize back to the image (`predict_window`)."""
  size = config.model.global_size
  height, width = image.size
  rows, cols = nearest_source(size, height), nearest_source(size, width)
  scales = np.float32(size) / np.asarray([height, width], np.float32)
  return {"map": _illumination(state, jnp.asarray(image.sample(rows, cols))), "scales": jnp.asarray(scales)}


@jax.jit
def _illumination(state, small):
  net = state["net"]
  return net.apply_fn({"params": net.params}, small, illumination_only=True)


def predict_window(state, windows, context, offsets, cores, image_size, *, config):
  """The detail step on windows, with the illumination map resized to the whole image and cut to each
  window: image row r reads global row floor(float32(r) * float32(global_size / H)), as `nearest_source`
  (the scale is the context's, computed on the host: the same float32 division on every backend)."""
  del cores, image_size
  size = config.model.global_size
  n, h, w, _ = windows.shape
  source = lambda d, scale: jnp.minimum(jnp.floor(d.astype(jnp.float32) * scale).astype(jnp.int32), size - 1)
  rows = source(offsets[:, :1] + jnp.arange(h)[None], context["scales"][0])  # [N, h]
  cols = source(offsets[:, 1:] + jnp.arange(w)[None], context["scales"][1])  # [N, w]
  cut = jax.vmap(lambda r, c: context["map"][0][r][:, c])(rows, cols)  # [N, h, w, F]
  net = state["net"]
  return net.apply_fn({"params": net.params}, windows, illumination=cut)


def networks(state, *, config):
  net = state["net"]
  size = config.data.crop_size
  return {"net": (net.params, lambda x: net.apply_fn({"params": net.params}, x), (1, size, size, 3))}


def make(config) -> Method:
  return Method(
      init=functools.partial(init, config=config),
      train_step=functools.partial(train_step, config=config),
      predict=predict,
      networks=functools.partial(networks, config=config),
      baselines=baselines.low_light(config),
      size_multiple=1,
      tiling=Tiling(halo=halo(config), context=functools.partial(illumination, config=config),
                    predict_window=functools.partial(predict_window, config=config)),
  )

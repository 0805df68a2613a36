"""GLADNet: Wang et al. 2018, "GLADNet: Low-Light Enhancement Network with Global Awareness" (FG).

One network (`lle.nn.gladnet.GLADNet`) trained with a channel-weighted L1 loss; inference is one pass at
the input's full size (the global branch always works on a fixed-size copy, so any size is accepted).
"""
import functools

import jax
import jax.numpy as jnp
from flax.training import train_state

from lle import losses, optim
from lle.methods import Method
from lle.nn.gladnet import GLADNet


def network(config) -> GLADNet:
  m = config.model
  return GLADNet(num_blocks=m.num_blocks, global_size=m.global_size, global_features=m.global_features,
                 detail_features=tuple(m.detail_features), kernel_size=m.kernel_size,
                 output_activation=m.output_activation, kernel_init=m.kernel_init)


def init(rng, *, config):
  module = network(config)
  size = config.data.crop_size
  params = module.init(rng, jnp.zeros((1, size, size, 3), jnp.float32))["params"]
  return {"net": train_state.TrainState.create(apply_fn=module.apply, params=params,
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
      baselines={"identity": lambda x: x},
      size_multiple=1,
  )

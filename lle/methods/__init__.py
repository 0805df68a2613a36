"""Methods: one module per paper. A method is its networks, its losses and its pure step functions.

`get(config)` returns a `Method`, whose functions close over the config and are pure, so the trainer can
jit, shard, checkpoint and resume any method the same way without knowing what it is.
"""
import dataclasses
import importlib
from typing import Any, Callable

import jax
from flax.training import train_state

NAMES = ("itmn", "gladnet", "neid", "tmgan", "iqe")


class NetState(train_state.TrainState):
  """One network's parameters, optimiser state and batch-norm statistics."""
  batch_stats: Any = None


@dataclasses.dataclass(frozen=True)
class Tiling:
  """How `predict` runs window by window on a large image with the result of one pass (`lle.tiling`).

  A window's output equals the one-pass output wherever the window holds `halo` input pixels of context
  on every side that is not the image's own border, so each window keeps only that core. What the
  network computes from the whole image (GLADNet's illumination branch, NEID's pooled attention
  features) is computed once per image by `context` and handed to every window.
  """
  # Input pixels of context on each side: the receptive-field radius of the local computation, rounded
  # up to the method's `size_multiple` (so that windows start on the pooling grid).
  halo: int
  # Output pixels per input pixel along each axis (NEID: its 2x output).
  output_scale: int = 1
  # (state, image: lle.tiling.TiledImage) -> pytree, the image-global part; None: there is none.
  context: Callable[[Any, Any], Any] | None = None
  # (state, windows [N, h, w, C], context, offsets [N, 2] (top, left of each window in the image),
  #  cores [N, 4] (top, left, bottom, right of each core inside its window), image size [2]) -> outputs.
  # None: `predict(state, windows)` (a fully convolutional method without a global part).
  predict_window: Callable[..., jax.Array] | None = None


@dataclasses.dataclass(frozen=True)
class Method:
  # rng -> state: every network's NetState in one pytree (jit-able; the trainer shards it).
  init: Callable[[jax.Array], Any]
  # (state, batch {'input', 'target'}, rng) -> (state, {name: scalar}); a GAN updates both networks.
  train_step: Callable[[Any, dict, jax.Array], tuple[Any, dict]]
  # (state, images [N, H, W, C]) -> outputs; H, W divide by `size_multiple`.
  predict: Callable[[Any, jax.Array], jax.Array]
  # state -> {network name: (params, apply(images) -> outputs, example input shape)} for `summary`.
  networks: Callable[[Any], dict]
  # name -> (inputs [N, H, W, C] -> outputs): training-free systems scored beside the model
  # (lle.baselines; an `lle.baselines.Baseline` with host=True runs outside jit, image by image).
  baselines: dict[str, Callable[[jax.Array], jax.Array]]
  size_multiple: int = 1
  tiling: Tiling | None = None


def get(config) -> Method:
  if config.method not in NAMES:
    raise ValueError(f"unknown config.method {config.method!r}; expected one of {NAMES}")
  return importlib.import_module(f"lle.methods.{config.method}").make(config)


def without_feature_losses(config):
  """A copy of `config` without the loss terms that read pretrained feature networks (a method's
  FEATURE_LOSS_WEIGHTS set to 0): its trained networks, without their weights files."""
  config = config.copy_and_resolve_references()
  module = importlib.import_module(f"lle.methods.{config.method}")
  with config.unlocked():
    for key in getattr(module, "FEATURE_LOSS_WEIGHTS", ()):
      parent, _, leaf = key.rpartition(".")
      node = config
      for part in filter(None, parent.split(".")):
        node = node[part]
      node[leaf] = 0.0
  return config

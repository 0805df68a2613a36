"""Methods: one module per paper. A method is its networks, its losses and its pure step functions.

`get(config)` returns a `Method`, whose functions close over the config and are pure, so the trainer can
jit, shard, checkpoint and resume any method the same way without knowing what it is.
"""
import dataclasses
import importlib
from typing import Any, Callable

import jax
from flax.training import train_state

NAMES = ("itmn", "gladnet", "neid")


class NetState(train_state.TrainState):
  """One network's parameters, optimiser state and batch-norm statistics."""
  batch_stats: Any = None


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
  # name -> (inputs [N, H, W, C] -> outputs): non-learned reference points scored beside the model.
  baselines: dict[str, Callable[[jax.Array], jax.Array]]
  size_multiple: int = 1


def get(config) -> Method:
  if config.method not in NAMES:
    raise ValueError(f"unknown config.method {config.method!r}; expected one of {NAMES}")
  return importlib.import_module(f"lle.methods.{config.method}").make(config)

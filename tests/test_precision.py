"""config.dtype = "bfloat16": the networks compute in bf16, parameters and optimizer state stay float32,
and a run still trains."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import methods, precision
from lle.data import pipeline
from tests.conftest import load_config


def _config(dtype):
  config = load_config("configs/gladnet.py:tiny")
  with config.unlocked():
    config.dtype = dtype
  return config


def _losses(config, steps):
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(0))
  step = jax.jit(method.train_step)
  batches = pipeline.train_dataset(config)
  losses = []
  for i in range(steps):
    batch = jax.tree.map(jnp.asarray, batches[i % 2])  # two batches, revisited: the loss must fall
    state, metrics = step(state, batch, jax.random.key(i))
    losses.append(float(metrics["loss"]))
  return state, losses, step.lower(state, batch, jax.random.key(0)).as_text()


def test_bfloat16_computes_in_bf16_keeps_fp32_state_and_trains():
  state, losses, hlo = _losses(_config("bfloat16"), 30)
  assert "bf16" in hlo and "convolution" in hlo
  assert {x.dtype for x in jax.tree.leaves(state["net"].params)} == {jnp.dtype(jnp.float32)}
  assert {x.dtype for x in jax.tree.leaves(state["net"].opt_state) if jnp.issubdtype(x.dtype, jnp.floating)} \
      == {jnp.dtype(jnp.float32)}
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
  _, fp32_losses, fp32_hlo = _losses(_config("float32"), 30)
  assert "bf16" not in fp32_hlo
  # The same run in float32 ends at a similar loss (bf16 rounds activations to ~3 significant digits).
  assert np.mean(losses[-5:]) == pytest.approx(np.mean(fp32_losses[-5:]), rel=0.25)


def test_unknown_dtype_is_an_error():
  with pytest.raises(ValueError, match="config.dtype='float16'"):
    precision.compute_dtype(_config("float16"))

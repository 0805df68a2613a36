import jax.numpy as jnp
import numpy as np

from lle import losses


def test_dmse_by_hand():
  pred = jnp.asarray([[1.0, 2.0], [4.0, 8.0]]).reshape(1, 2, 2, 1)
  target = jnp.zeros((1, 2, 2, 1))
  # d_x: rows (2-1), (8-4) -> 1, 4: mean of squares 8.5; d_y: cols (4-1), (8-2) -> 3, 6: mean 22.5.
  np.testing.assert_allclose(losses.dmse(pred, target), 8.5 + 22.5)
  # sum reduction is the squared Frobenius norm of eq. 2: (1 + 16) + (9 + 36).
  np.testing.assert_allclose(losses.dmse(pred, target, reduction="sum"), 62.0)
  # A constant offset has no gradient: dMSE is blind to it, MSE is not.
  assert float(losses.dmse(pred + 3.0, pred)) == 0.0
  np.testing.assert_allclose(losses.mse(pred + 3.0, pred), 9.0)


def test_dmse_is_per_channel():
  rng = np.random.default_rng(0)
  a, b = rng.random((2, 5, 6, 3)), rng.random((2, 5, 6, 3))
  per_channel = [float(losses.dmse(a[..., c:c + 1], b[..., c:c + 1], reduction="sum")) for c in range(3)]
  np.testing.assert_allclose(float(losses.dmse(a, b, reduction="sum")), sum(per_channel), rtol=1e-6)


def test_regularizer_is_eq3_and_finite_for_large_logits():
  real, fake = jnp.asarray([0.3, -1.2]), jnp.asarray([2.0, -0.5])
  sig = lambda x: 1 / (1 + np.exp(-np.asarray(x)))
  expected = np.mean(np.log(1 - sig(real))) + np.mean(np.log(sig(fake)))
  np.testing.assert_allclose(losses.itmn_regularizer(real, fake), expected, rtol=1e-6)
  big = losses.itmn_regularizer(jnp.asarray([200.0]), jnp.asarray([-200.0]))
  assert np.isfinite(float(big)) and float(big) < -399

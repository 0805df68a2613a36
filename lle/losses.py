"""Pure loss functions on NHWC batches. Each returns a scalar averaged over the batch."""
import jax
import jax.numpy as jnp


def _reduce(per_pixel, reduction: str):
  """'mean': average over every element (scale-free in image size). 'sum': squared Frobenius norm per
  image, averaged over the batch (the literal ||.||_F^2 of Ning et al. eq. 2)."""
  if reduction == "mean":
    return jnp.mean(per_pixel)
  if reduction == "sum":
    return jnp.mean(jnp.sum(per_pixel, axis=tuple(range(1, per_pixel.ndim))))
  raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")


def mse(pred, target, *, reduction: str = "mean"):
  return _reduce(jnp.square(pred - target), reduction)


def image_gradients(x):
  """Forward differences per channel: (d_x [N, H, W-1, C], d_y [N, H-1, W, C])."""
  return x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]


def dmse(pred, target, *, reduction: str = "mean"):
  """Ning et al. 2018 eq. 2: ||d_x G(L) - d_x H||^2 + ||d_y G(L) - d_y H||^2, per channel."""
  pdx, pdy = image_gradients(pred)
  tdx, tdy = image_gradients(target)
  return _reduce(jnp.square(pdx - tdx), reduction) + _reduce(jnp.square(pdy - tdy), reduction)


def itmn_regularizer(real_logits, fake_logits):
  """Ning et al. 2018 eq. 3: R = E_H[log(1 - D(H))] + E_L[log D(G(L))], with D = sigmoid(logits).

  The generator minimises R (eq. 4), which lowers D on its outputs; the discriminator maximises it,
  which raises D on generated images and lowers it on real ones: in this paper's sign convention D(x)
  is the probability that x is *generated*. log D = log_sigmoid(logit) and log(1 - D) =
  log_sigmoid(-logit) keep it finite for any logit.
  """
  real_term = 0.0 if real_logits is None else jnp.mean(jax.nn.log_sigmoid(-real_logits))
  return real_term + jnp.mean(jax.nn.log_sigmoid(fake_logits))

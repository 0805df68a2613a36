"""Shared input preparation for the full-reference metrics.

Every metric in this package takes NHWC float arrays and goes through the same three optional steps,
in this order, so that "PSNR on Y, 8-bit, border 4" means the same thing everywhere:

1. ``quantize``: round to the 8-bit grid of ``data_range`` (what a saved PNG would hold);
2. ``y_channel``: convert RGB to the luma Y of ITU-R BT.601 exactly as MATLAB's ``rgb2ycbcr``
   (studio range, 16-235 on the 0-255 scale); when ``quantize`` is set Y is rounded to 8 bit as well,
   because MATLAB's ``rgb2ycbcr`` returns ``uint8`` for ``uint8`` input;
3. ``crop_border``: drop that many pixels on every side (super-resolution convention).
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

# MATLAB rgb2ycbcr, first row of its matrix (for R, G, B in [0, 1], Y in [0, 255]) and its offset.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def check_pair(pred: chex.Array, target: chex.Array) -> None:
  """Asserts two NHWC float arrays of equal shape."""
  chex.assert_rank([pred, target], 4)
  chex.assert_equal_shape([pred, target])
  chex.assert_type([pred, target], float)


def quantize_8bit(x: chex.Array, data_range: float) -> chex.Array:
  """Rounds ``x`` to the nearest of the 256 levels spanning ``[0, data_range]`` (clipped first)."""
  levels = jnp.round(jnp.clip(x / data_range, 0.0, 1.0) * 255.0)
  return levels * (data_range / 255.0)


def rgb_to_y(x: chex.Array, *, data_range: float = 1.0) -> chex.Array:
  """Luma Y of BT.601 as MATLAB's ``rgb2ycbcr``: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``.

  ``R, G, B`` are in ``[0, 1]`` after division by ``data_range``; Y is returned on the same scale as the
  input (``Y255 / 255 * data_range``), so Y spans ``[16, 235] / 255 * data_range``. Shape ``[N, H, W, 1]``.
  """
  chex.assert_rank(x, 4)
  chex.assert_axis_dimension(x, -1, 3)
  w = jnp.asarray(_Y_WEIGHTS, x.dtype)
  y255 = _Y_OFFSET + jnp.tensordot(x / data_range, w, axes=[[-1], [0]])
  return (y255 / 255.0 * data_range)[..., None]


def prepare(
    x: chex.Array,
    *,
    data_range: float,
    quantize: bool,
    y_channel: bool,
    crop_border: int,
) -> chex.Array:
  """Applies the optional quantisation, Y conversion and border crop (see module docstring)."""
  if quantize:
    x = quantize_8bit(x, data_range)
  if y_channel:
    x = rgb_to_y(x, data_range=data_range)
    if quantize:
      # MATLAB returns uint8 Y for uint8 RGB: round on the 0-255 scale.
      x = jnp.round(x / data_range * 255.0) * (data_range / 255.0)
  if crop_border:
    if 2 * crop_border >= min(x.shape[1], x.shape[2]):
      raise ValueError(f'crop_border={crop_border} leaves nothing of a {x.shape[1]}x{x.shape[2]} image')
    x = x[:, crop_border:-crop_border, crop_border:-crop_border, :]
  return x

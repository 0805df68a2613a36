"""MATLAB-compatible ``imresize`` with the bicubic kernel (antialiasing on), as dense matrices.

MATLAB's ``imresize(A, scale)`` (Image Processing Toolbox, ``contributions`` in ``imresize.m``):
the output length is ``ceil(scale * in)``; output pixel ``x`` (1-based) samples the input at
``u = x / scale + 0.5 (1 - 1 / scale)``; the cubic kernel (Keys, a = -0.5) is widened to
``4 / scale`` taps and scaled by ``scale`` when shrinking (antialiasing); the weights of each output
pixel are normalised to sum to 1, and taps outside the image are mirrored with the edge pixel repeated.
Both dimensions use the same procedure; with floats there is no rounding between them.
"""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
  ax = np.abs(x)
  ax2, ax3 = ax**2, ax**3
  return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
          + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def contributions(in_length: int, out_length: int, scale: float, antialiasing: bool = True):
  """MATLAB's ``contributions``: ``(weights [out, taps] float64, indices [out, taps] int64, 0-based)``,
  output pixel ``o`` being ``sum_t weights[o, t] * signal[indices[o, t]]``."""
  kernel_width = 4.0
  if scale < 1 and antialiasing:
    kernel = lambda x: scale * _cubic(scale * x)
    kernel_width /= scale
  else:
    kernel = _cubic
  x = np.arange(1, out_length + 1, dtype=np.float64)
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)
  left = np.floor(u - kernel_width / 2.0)
  taps = int(math.ceil(kernel_width)) + 2
  ind = left[:, None] + np.arange(taps)[None, :]
  weights = kernel(u[:, None] - ind)
  weights /= weights.sum(axis=1, keepdims=True)
  # Symmetric extension: index sequence 1..n, n..1 repeated (1-based).
  aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
  ind = aux[np.mod(ind.astype(np.int64) - 1, len(aux))] - 1
  return weights, ind


@functools.lru_cache(maxsize=64)
def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
  """``[out_length, in_length]`` float64 matrix ``W`` with ``resized = W @ signal`` along one axis."""
  weights, ind = contributions(in_length, out_length, scale, antialiasing)
  mat = np.zeros((out_length, in_length))
  for j in range(weights.shape[1]):
    np.add.at(mat, (np.arange(out_length), ind[:, j]), weights[:, j])
  return mat


def imresize(images: chex.Array, scale: float) -> chex.Array:
  """MATLAB ``imresize(A, scale)`` (bicubic, antialiasing) on ``[N, H, W]`` float images."""
  chex.assert_rank(images, 3)
  _, h, w = images.shape
  rows = resize_matrix(h, int(math.ceil(scale * h)), float(scale))
  cols = resize_matrix(w, int(math.ceil(scale * w)), float(scale))
  hp = jax.lax.Precision.HIGHEST
  out = jnp.einsum('oh,nhw->now', jnp.asarray(rows, images.dtype), images, precision=hp)
  return jnp.einsum('pw,now->nop', jnp.asarray(cols, images.dtype), out, precision=hp)

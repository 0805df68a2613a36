"""NIQE: the natural image quality evaluator (Mittal, Soundararajan, Bovik 2012), no-reference.

Source: A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'Completely Blind' Image Quality
Analyzer", IEEE Signal Processing Letters 20(3), 2013, and the official MATLAB release
(``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``) with its pristine model
(``modelparameters.mat``, shipped here as ``data/niqe_pris_params.json`` under LIVE's notice in
``data/NIQE_NOTICE.txt``). Lower is better.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from lle.metrics import _imresize

BLOCK = 96  # computequality: blocksizerow = blocksizecol = 96, no overlap
# MATLAB rgb2gray (the luma row of the inverse NTSC matrix), used by computequality for RGB input.
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
# estimateaggdparam: the shape parameter is searched on the grid 0.2:0.001:10.
_GAMMA_GRID = 0.2 + 0.001 * np.arange(9801)
# computefeature: circshift offsets (rows, cols) of the four neighbour products.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
  """``(mu_prisparam [36], cov_prisparam [36, 36])`` of the official NIQE model, float64."""
  ref = importlib.resources.files('lle.metrics') / 'data' / 'niqe_pris_params.json'
  data = json.loads(ref.read_text())
  return np.asarray(data['mu_prisparam'], np.float64), np.asarray(data['cov_prisparam'], np.float64)


@functools.lru_cache(maxsize=1)
def _aggd_tables():
  """Lookup tables over the shape grid: ``r(g) = G(2/g)^2 / (G(1/g) G(3/g))`` (increasing in g),
  ``sqrt(G(1/g) / G(3/g))`` (scale factor of the betas) and ``G(2/g) / G(1/g)`` (mean factor)."""
  g = _GAMMA_GRID
  r = special.gamma(2 / g) ** 2 / (special.gamma(1 / g) * special.gamma(3 / g))
  assert np.all(np.diff(r) > 0)
  return r, np.sqrt(special.gamma(1 / g) / special.gamma(3 / g)), special.gamma(2 / g) / special.gamma(1 / g)


def _aggd(v: chex.Array):
  """estimateaggdparam on the last axis: ``(alpha, beta_l, beta_r)`` of an asymmetric generalised
  Gaussian, by moment matching on the 0.2:0.001:10 grid. A side without samples gives a NaN beta, as
  MATLAB's ``mean([])``, and the shape 0.2 (see below)."""
  r_tab, beta_tab, mean_tab = (jnp.asarray(t, v.dtype) for t in _aggd_tables())
  sq = v * v
  neg, pos = v < 0, v > 0
  left = jnp.sqrt(jnp.sum(jnp.where(neg, sq, 0.0), -1) / jnp.sum(neg, -1))
  right = jnp.sqrt(jnp.sum(jnp.where(pos, sq, 0.0), -1) / jnp.sum(pos, -1))
  g = left / right
  rhat = jnp.mean(jnp.abs(v), -1) ** 2 / jnp.mean(sq, -1)
  rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
  # MATLAB takes the first grid point minimising (r - rnorm)^2; r is increasing, so only the two
  # neighbours of the insertion point can win, and the lower one wins a tie.
  hi = jnp.clip(jnp.searchsorted(r_tab, rnorm), 1, r_tab.shape[0] - 1)
  lo = hi - 1
  idx = jnp.where((r_tab[lo] - rnorm) ** 2 <= (r_tab[hi] - rnorm) ** 2, lo, hi)
  # A side without samples (a flat or clipped block: every coefficient, or every neighbour product, of
  # one sign or zero) makes rnorm NaN; every (r - rnorm)^2 is then NaN (or Inf for an infinite rnorm)
  # and MATLAB's min returns the first element: the shape is the grid's first point, 0.2, a finite
  # value that nanmean averages in, and the side's beta stays NaN.
  idx = jnp.where(jnp.isfinite(rnorm), idx, 0)
  alpha = jnp.asarray(_GAMMA_GRID, v.dtype)[idx]
  return alpha, left * beta_tab[idx], right * beta_tab[idx], mean_tab[idx]


def _block_features(blocks: chex.Array) -> chex.Array:
  """computefeature for blocks ``[..., b, b]`` of normalised luminance: 18 numbers per block."""
  flat = blocks.reshape(blocks.shape[:-2] + (-1,))
  alpha, bl, br, _ = _aggd(flat)
  feats = [alpha, (bl + br) / 2]
  for shift in _SHIFTS:
    # circshift within the block: the neighbour products wrap around the block's edges.
    shifted = jnp.roll(blocks, shift, axis=(-2, -1)).reshape(flat.shape)
    alpha, bl, br, mean_factor = _aggd(flat * shifted)
    feats += [alpha, (br - bl) * mean_factor, bl, br]
  return jnp.stack(feats, axis=-1)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
  """``fspecial('gaussian', 7, 7/6)``, normalised once more by computequality (``window /
  sum(sum(window))``), with MATLAB's and Octave's arithmetic: the sums run element by element in column
  order (numpy's pairwise sums round differently, and the last bit of a weight matters, see
  :func:`_correlate_replicate`)."""
  sigma = 7.0 / 6.0
  h = np.array([[math.exp(-(x * x + y * y) / (2 * sigma * sigma)) for x in range(-3, 4)] for y in range(-3, 4)])
  total = 0.0
  for v in h.T.ravel():  # sum(h(:))
    total += v
  h = h / total
  columns = [0.0] * 7
  for j in range(7):  # sum(sum(h)): column sums, then their sum
    for i in range(7):
      columns[j] += h[i, j]
  total = 0.0
  for v in columns:
    total += v
  return h / total


def _unfused_product(a, b):
  """``a * b`` rounded before it is added to anything: XLA contracts ``c + a * b`` into a fused multiply-add
  (one rounding instead of two), and a select on a runtime condition keeps it from doing so."""
  return jnp.where(a == a, a * b, 0.0)


def _correlate_replicate(x: chex.Array) -> chex.Array:
  """``imfilter(x, window, 'replicate')`` on [N, H, W], in the arithmetic of the reference run (GNU
  Octave's ``filter2``, i.e. ``conv2(x, rot90(window, 2), 'valid')`` on the padded image): the 49
  products are rounded one by one and added in the order of the rotated kernel's elements in column
  order. Where a 7x7 neighbourhood is flat (or symmetric about its centre) ``x - mu`` is this sum's
  rounding error, and its sign decides which side of NIQE's asymmetric fits the pixel counts on, so the
  order must be the reference's for the score to be: on blurred 8-bit images a separable or reordered
  filter moves NIQE by up to 0.03."""
  w = _window()
  h, wid = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (3, 3), (3, 3)), mode='edge')
  acc = jnp.zeros_like(x)
  for j in range(7):
    for i in range(7):
      u, v = 6 - i, 6 - j  # rot90(window, 2)(i, j) = window(6 - i, 6 - j)
      acc = acc + _unfused_product(padded[:, u:u + h, v:v + wid], jnp.asarray(w[u, v], x.dtype))
  return acc


def _scale_features(im: chex.Array, block: int) -> chex.Array:
  """One scale of computequality: MSCN coefficients, then features of each block. [N, B, 18]."""
  mu = _correlate_replicate(im)
  sigma = jnp.sqrt(jnp.abs(_correlate_replicate(im * im) - _unfused_product(mu, mu)))
  structdis = (im - mu) / (sigma + 1.0)
  n, h, w = structdis.shape
  blocks = structdis.reshape(n, h // block, block, w // block, block).transpose(0, 1, 3, 2, 4)
  return _block_features(blocks.reshape(n, -1, block, block))


def _nan_mean_cov(feats: chex.Array):
  """MATLAB ``nanmean`` (per column, NaNs skipped) and ``nancov`` (rows with any NaN dropped,
  normalised by n - 1) of ``[N, B, F]``."""
  finite = ~jnp.isnan(feats)
  mean = jnp.sum(jnp.where(finite, feats, 0.0), 1) / jnp.sum(finite, 1)
  row_ok = jnp.all(finite, axis=-1, keepdims=True)
  n_ok = jnp.sum(row_ok, axis=1)
  x = jnp.where(row_ok, feats, 0.0)
  centred = jnp.where(row_ok, x - jnp.sum(x, 1, keepdims=True) / n_ok[:, None], 0.0)
  cov = jnp.einsum('nbi,nbj->nij', centred, centred,
                   precision=jax.lax.Precision.HIGHEST) / (n_ok[:, :, None] - 1)
  return mean, cov


def _to_gray255(images, data_range, convert, quantize):
  x = images * (255.0 / data_range)
  if quantize:  # an 8-bit file: its RGB values are integers before rgb2gray
    x = jnp.floor(x + 0.5)
  if images.shape[-1] == 3:
    if convert == 'gray':
      x = jnp.tensordot(x, jnp.asarray(_RGB2GRAY, x.dtype), axes=[[-1], [0]])
    elif convert == 'y':
      # MATLAB rgb2ycbcr luma (studio range), the super-resolution convention.
      x = 16.0 + jnp.tensordot(x / 255.0, jnp.asarray((65.481, 128.553, 24.966), x.dtype),
                               axes=[[-1], [0]])
    else:
      raise ValueError(f"niqe: convert must be 'gray' or 'y', got {convert!r}")
  elif images.shape[-1] == 1:
    x = x[..., 0]
  else:
    raise ValueError(f'niqe expects 1 or 3 channels, got {images.shape[-1]}')
  # rgb2gray / rgb2ycbcr return uint8 for uint8 input (rounded, halves up).
  return jnp.floor(x + 0.5) if quantize else x


@functools.partial(jax.jit, static_argnames=('convert', 'quantize', 'crop_border'))
def niqe(
    images: chex.Array,
    *,
    data_range: float = 1.0,
    convert: str = 'gray',
    quantize: bool = False,
    crop_border: int = 0,
) -> chex.Array:
  """NIQE per image (lower is better), as ``computequality(im, 96, 96, 0, 0, mu, cov)``.

  * Colour input becomes gray as MATLAB ``rgb2gray`` (``convert='gray'``, the official script) or
    the BT.601 Y of ``rgb2ycbcr`` (``convert='y'``, used by super-resolution papers); values on the
    0-255 scale (``images * 255 / data_range``); ``quantize=True`` rounds that to 8 bit, which is
    what MATLAB does for ``uint8`` files. ``crop_border`` drops pixels on every side first.
  * The image is cropped to whole 96x96 blocks (top-left kept).
  * At two scales (the second from MATLAB's bicubic ``imresize(im, 0.5)`` with antialiasing):
    MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian (sigma 7/6, replicated
    borders); per block (96, then 48 pixels) an AGGD fit of the coefficients (shape, mean scale)
    and of their products with the four neighbours (shape, mean, left and right scale): 36 features.
  * ``NIQE = sqrt((mu_p - mu_d)^T pinv((S_p + S_d) / 2) (mu_p - mu_d))`` with the image's block
    feature mean ``mu_d`` (``nanmean``) and covariance ``S_d`` (``nancov``) against the pristine
    model ``(mu_p, S_p)``.

  The image needs at least 96x96 pixels (after the crop) and, for a defined covariance, at least two
  blocks. The quadratic form is solved after scaling the matrix to unit diagonal, which is exact
  for an invertible matrix and keeps float32 well conditioned.

  Where a 7x7 neighbourhood is flat or symmetric about its centre (many such areas in blurred 8-bit
  images), ``I - mu`` is the rounding error of the Gaussian filter, and its sign decides on which side
  of the asymmetric fits the pixel is counted. The filter therefore runs in the reference's order
  (:func:`_correlate_replicate`): in float64 (:func:`niqe_float64`, what the scorer and the evaluation
  use) this matches the LIVE release run by GNU Octave to 1e-12 on sharp and blurred photos and on
  tone-mapped photos with flat blocks and clipped highlights; float32
  rounds differently and can be off by 1e-2 on blurred images (about 1e-3 on sharp ones). MATLAB's own
  filter order is not published: its scores of images with flat areas differ from Octave's by a few 1e-4
  (I06 of the published values: 2.4e-4).
  """
  chex.assert_rank(images, 4)
  chex.assert_type(images, float)
  x = _to_gray255(images, data_range, convert, quantize)
  if crop_border:
    x = x[:, crop_border:-crop_border, crop_border:-crop_border]
  rows, cols = x.shape[1] // BLOCK, x.shape[2] // BLOCK
  if rows * cols < 1:
    raise ValueError(f'niqe needs at least {BLOCK}x{BLOCK} pixels, got {x.shape[1]}x{x.shape[2]}')
  x = x[:, :rows * BLOCK, :cols * BLOCK]
  feats1 = _scale_features(x, BLOCK)
  feats2 = _scale_features(_imresize.imresize(x, 0.5), BLOCK // 2)
  mean, cov = _nan_mean_cov(jnp.concatenate([feats1, feats2], axis=-1))
  mu_p, cov_p = (jnp.asarray(a, x.dtype) for a in pristine_model())
  d = mu_p[None] - mean
  m = (cov_p[None] + cov) / 2.0
  scale = jnp.sqrt(jnp.diagonal(m, axis1=1, axis2=2))
  m_unit = m / (scale[:, :, None] * scale[:, None, :])
  d_unit = d / scale
  # (S_p + S_d) / 2 is positive definite (S_p is, S_d is a covariance), so MATLAB's pinv, whose
  # float64 tolerance is ~1e-14 relative, is the inverse: solve instead. A float32 pinv would cut
  # singular values below ~4e-5 relative and change the score by several percent.
  sol = jnp.linalg.solve(m_unit, d_unit[..., None])[..., 0]
  return jnp.sqrt(jnp.sum(d_unit * sol, axis=-1))


def niqe_float64(images, *, data_range: float = 1.0, convert: str = 'gray', quantize: bool = False,
                 crop_border: int = 0) -> np.ndarray:
  """:func:`niqe` in float64 on concrete (host) arrays, whatever ``jax_enable_x64`` says: the precision
  the reference computes in, which decides its scores on images with flat areas. Not for use inside
  ``jax.jit``."""
  try:
    images = np.asarray(images, np.float64)
  except jax.errors.TracerArrayConversionError as e:
    raise TypeError('niqe_float64 runs on concrete arrays, outside jax.jit (inside, use niqe)') from e
  with jax.enable_x64(True):
    return np.asarray(niqe(images, data_range=float(data_range), convert=convert, quantize=quantize,
                           crop_border=crop_border))

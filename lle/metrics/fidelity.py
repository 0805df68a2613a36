"""Full-reference fidelity metrics for display-referred images: MSE, PSNR (also of CIELAB lightness),
SSIM, MS-SSIM.

All functions take NHWC float arrays (``pred``, ``target``) of equal shape, values in
``[0, data_range]``, and return one score per image, shape ``[N]``. They are pure and jitted with
their options static, so they can also be called inside another ``jax.jit``.

Shared options (applied in this order; see ``_prep.py``):

* ``quantize``: round both images to 8 bit (``round(x / data_range * 255)``) before scoring, which is
  what a result saved as PNG and read back would give;
* ``y_channel``: score the BT.601 luma Y as computed by MATLAB's ``rgb2ycbcr`` (16-235 studio range,
  rounded to 8 bit too when ``quantize``), instead of the RGB channels;
* ``crop_border``: ignore that many pixels on each side.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

from lle.metrics import _filters
from lle.metrics import _prep

# data_range is traced (a multiplier only), so a new peak value does not recompile.
_PREP_OPTS = ('quantize', 'y_channel', 'crop_border')

# Wang et al. 2004 and their reference code ssim_index.m.
SSIM_FILTER_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Wang, Simoncelli, Bovik 2003 (msssim.m): weights of the five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _prepare_pair(pred, target, **opts):
  _prep.check_pair(pred, target)
  return _prep.prepare(pred, **opts), _prep.prepare(target, **opts)


@functools.partial(jax.jit, static_argnames=_PREP_OPTS)
def mse(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    quantize: bool = False,
    y_channel: bool = False,
    crop_border: int = 0,
) -> chex.Array:
  """Mean squared error per image: ``mean over H, W, C of (pred - target)^2``.

  The mean runs over all channels (the usual colour MSE: "sum over all squared differences divided by
  image size and by three"). Values are on the scale of the input: pass 0-255 images for the 8-bit MSE
  that papers such as Montulet et al. 2019 report. ``data_range`` only matters for ``quantize`` and
  ``y_channel``.
  """
  p, t = _prepare_pair(pred, target, data_range=data_range, quantize=quantize,
                       y_channel=y_channel, crop_border=crop_border)
  return jnp.mean(jnp.square(p - t), axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=_PREP_OPTS)
def psnr(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    quantize: bool = False,
    y_channel: bool = False,
    crop_border: int = 0,
) -> chex.Array:
  """Peak signal-to-noise ratio per image in dB: ``10 log10(data_range^2 / MSE)``.

  MSE as in :func:`mse` (mean over all pixels and channels, as scikit-image's
  ``peak_signal_noise_ratio`` and MATLAB's ``psnr``). ``data_range`` is the peak value ``R`` (1 for
  float images, 255 for 8-bit). Identical images give ``inf``. With ``y_channel`` this is the
  super-resolution "PSNR on Y" (MATLAB ``rgb2ycbcr``; set ``quantize`` for MATLAB's uint8 path).
  """
  err = mse(pred, target, data_range=data_range, quantize=quantize,
            y_channel=y_channel, crop_border=crop_border)
  return 10.0 * jnp.log10(data_range**2 / err)


@jax.jit
def psnr_lightness(pred: chex.Array, target: chex.Array, *, data_range: float = 1.0) -> chex.Array:
  """PSNR of CIELAB lightness per image in dB: ``10 log10(100^2 / MSE(L))``, L in [0, 100] of the sRGB
  images (D65, scikit-image's ``rgb2lab``; values clipped to ``[0, data_range]`` first). It scores
  tone alone: a method that changes only L (Montulet & Briassouli 2019) is judged here apart from the
  colour it keeps."""
  _prep.check_pair(pred, target)
  from lle import color
  light = lambda x: color.srgb_to_lab(jnp.clip(x / data_range, 0.0, 1.0))[..., :1]
  return psnr(light(pred), light(target), data_range=100.0)


def _ssim_terms(x, y, *, data_range, k1, k2, filter_size, sigma):
  """Per-pixel luminance*contrast*structure and contrast*structure maps ('valid' positions only)."""
  taps = _filters.gaussian_kernel_1d(filter_size, sigma)
  blur = functools.partial(_filters.separable_valid, taps=taps)
  c1 = (k1 * data_range) ** 2
  c2 = (k2 * data_range) ** 2
  mu_x, mu_y, xx, yy, xy = _filters.blur_many([x, y, x * x, y * y, x * y], blur)
  # Population (1/N-weighted) moments, as Wang's code and skimage's use_sample_covariance=False.
  var_x = xx - mu_x * mu_x
  var_y = yy - mu_y * mu_y
  cov = xy - mu_x * mu_y
  cs = (2.0 * cov + c2) / (var_x + var_y + c2)
  lum = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
  return lum * cs, cs


def _check_window(x, filter_size, name):
  if min(x.shape[1], x.shape[2]) < filter_size:
    raise ValueError(f'{name}: images of {x.shape[1]}x{x.shape[2]} are smaller than the '
                     f'{filter_size}x{filter_size} window')


def matlab_ssim_factor(height: int, width: int) -> int:
  """Downsampling factor of Wang's 2009 ``ssim.m``: ``max(1, round(min(H, W) / 256))``
  (MATLAB rounds halves away from zero)."""
  return max(1, int(min(height, width) / 256.0 + 0.5))


@functools.partial(
    jax.jit,
    static_argnames=_PREP_OPTS + ('downsample', 'k1', 'k2', 'filter_size', 'sigma'))
def ssim(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    quantize: bool = False,
    y_channel: bool = False,
    crop_border: int = 0,
    downsample: bool = False,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
    filter_size: int = SSIM_FILTER_SIZE,
    sigma: float = SSIM_SIGMA,
) -> chex.Array:
  """Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) per image.

  Definition (reference code ``ssim_index.m``): ``L = data_range``, ``C1 = (K1 L)^2``,
  ``C2 = (K2 L)^2``; local means, variances and covariance under an ``11x11`` Gaussian window
  (sigma 1.5, normalised, population moments); ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) /
  ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``, averaged over the 'valid' window positions only
  (no padding: ``H - 10`` by ``W - 10`` values). Colour images: SSIM per channel, then the mean
  over channels; a single-channel image scores that channel; ``y_channel`` scores the BT.601 Y.

  This equals ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, channel_axis=-1, data_range=data_range)`` (skimage filters with
  reflection and then crops 5 pixels, which leaves exactly the 'valid' positions). ``dm_pix.ssim``
  also averages over the 'valid' positions; it clamps variances at ``eps^2`` and ``|s_xy|`` at
  ``s_x s_y``, which changes only degenerate (flat) windows.

  ``downsample=True`` reproduces Wang's 2009 ``ssim.m``: both images are first box-filtered with
  ``ones(f)/f^2`` ('symmetric' borders, MATLAB anchoring) and subsampled by
  ``f = max(1, round(min(H, W) / 256))``, which models a viewing distance.
  """
  x, y = _prepare_pair(pred, target, data_range=data_range, quantize=quantize,
                       y_channel=y_channel, crop_border=crop_border)
  if downsample:
    f = matlab_ssim_factor(x.shape[1], x.shape[2])
    x, y = _filters.box_downsample(x, f), _filters.box_downsample(y, f)
  _check_window(x, filter_size, 'ssim')
  ssim_map, _ = _ssim_terms(x, y, data_range=data_range, k1=k1, k2=k2,
                            filter_size=filter_size, sigma=sigma)
  # Mean over positions per channel, then over channels (equal counts, so one mean suffices).
  return jnp.mean(ssim_map, axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=_PREP_OPTS + ('weights',))
def ms_ssim(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    quantize: bool = False,
    y_channel: bool = False,
    crop_border: int = 0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> chex.Array:
  """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) per image, as the reference ``msssim.m``.

  At scale ``j = 1..M`` (``M = len(weights)``, default 5 with weights
  ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``) the contrast-structure term
  ``cs_j = mean((2 s_xy + C2) / (s_x^2 + s_y^2 + C2))`` is computed with the SSIM window and
  constants ('valid' positions); at the coarsest scale the full SSIM ``l_M cs_M``.
  ``MS-SSIM = prod_{j<M} cs_j^{w_j} * ssim_M^{w_M}``. Between scales both images are filtered with
  ``ones(2)/4`` ('symmetric' borders) and every second pixel is kept, as ``msssim.m`` and the
  TensorFlow ``MultiScaleSSIM`` that DPED's evaluation uses. Colour images: the per-scale means run
  over all channels (as that TensorFlow code). The image must be at least ``11 * 2^(M-1)`` pixels on
  its short side (176 for five scales). A negative ``cs_j`` gives NaN, as in the original.
  """
  x, y = _prepare_pair(pred, target, data_range=data_range, quantize=quantize,
                       y_channel=y_channel, crop_border=crop_border)
  levels = len(weights)
  min_side = SSIM_FILTER_SIZE * 2 ** (levels - 1)
  if min(x.shape[1], x.shape[2]) < min_side:
    raise ValueError(f'ms_ssim: {levels} scales need images of at least {min_side} pixels per '
                     f'side, got {x.shape[1]}x{x.shape[2]}')
  w = jnp.asarray(weights, x.dtype)
  score = jnp.ones(x.shape[0], x.dtype)
  for j in range(levels):
    ssim_map, cs_map = _ssim_terms(x, y, data_range=data_range, k1=SSIM_K1, k2=SSIM_K2,
                                   filter_size=SSIM_FILTER_SIZE, sigma=SSIM_SIGMA)
    if j < levels - 1:
      score = score * jnp.mean(cs_map, axis=(1, 2, 3)) ** w[j]
      x, y = _filters.box_downsample(x, 2), _filters.box_downsample(y, 2)
    else:
      score = score * jnp.mean(ssim_map, axis=(1, 2, 3)) ** w[j]
  return score


def _dped_window(height: int, width: int) -> tuple[int, float]:
  """DPED ``ssim.py`` ``_SSIMForMultiScale``: the window shrinks to the image, ``size = min(11, H, W)``,
  and its sigma with it, ``size * 1.5 / 11``."""
  size = min(SSIM_FILTER_SIZE, height, width)
  return size, size * SSIM_SIGMA / SSIM_FILTER_SIZE


@functools.partial(jax.jit, static_argnames=('levels',))
def ms_ssim_dped_terms(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    levels: int = len(MS_SSIM_WEIGHTS),
) -> tuple[chex.Array, chex.Array]:
  """Per image and scale, the means of the SSIM map and of the contrast-structure map of DPED's
  ``MultiScaleSSIM`` (aiff22/DPED ``ssim.py``): ``(ssim [N, levels], cs [N, levels])``.

  At each scale: a normalised Gaussian window of ``min(11, H, W)`` taps and sigma ``1.5 size / 11``
  (``_FSpecialGauss``), 'valid' filtering (``fftconvolve(..., mode='valid')``), population moments,
  ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``; the means run over positions and channels. Between scales
  both images are filtered with ``ones(2, 2) / 4`` with 'reflect' borders (scipy's, the edge pixel
  repeated) anchored at the pixel and its next neighbours, then every second pixel is kept. DPED scores
  x 255 with ``max_val=255``: the same values as [0, 1] images with ``data_range=1``.

  The number of map entries per image at each scale is :func:`ms_ssim_dped_counts`; DPED's whole-batch
  means are the count-weighted means of these per-image means (:func:`ms_ssim_dped_pool`).
  """
  _prep.check_pair(pred, target)
  x, y = pred, target
  ssim_means, cs_means = [], []
  for j in range(levels):
    size, sigma = _dped_window(x.shape[1], x.shape[2])
    ssim_map, cs_map = _ssim_terms(x, y, data_range=data_range, k1=SSIM_K1, k2=SSIM_K2, filter_size=size,
                                   sigma=sigma)
    ssim_means.append(jnp.mean(ssim_map, axis=(1, 2, 3)))
    cs_means.append(jnp.mean(cs_map, axis=(1, 2, 3)))
    if j < levels - 1:
      x, y = _filters.box_downsample(x, 2), _filters.box_downsample(y, 2)
  return jnp.stack(ssim_means, axis=1), jnp.stack(cs_means, axis=1)


def ms_ssim_dped_counts(height: int, width: int, channels: int, levels: int = len(MS_SSIM_WEIGHTS)) -> list[int]:
  """Entries of the SSIM map of one image at each scale of :func:`ms_ssim_dped_terms`."""
  counts = []
  for _ in range(levels):
    size, _ = _dped_window(height, width)
    counts.append((height - size + 1) * (width - size + 1) * channels)
    height, width = -(-height // 2), -(-width // 2)
  return counts


def ms_ssim_dped_combine(ssim_means, cs_means, weights=MS_SSIM_WEIGHTS):
  """``prod_{j<M} cs_j^{w_j} * ssim_M^{w_M}`` over the last axis (a negative ``cs_j`` gives NaN, as
  DPED's numpy power does)."""
  w = jnp.asarray(weights, jnp.asarray(cs_means).dtype)
  return jnp.prod(cs_means[..., :-1] ** w[:-1], axis=-1) * ssim_means[..., -1] ** w[-1]


def ms_ssim_dped_pool(ssim_means, cs_means, counts, weights=MS_SSIM_WEIGHTS):
  """DPED's ``MultiScaleSSIM`` of a whole batch from its images' terms: ``ssim_means``, ``cs_means``
  [N, levels] and ``counts`` [N, levels] (map entries; images of one size have equal counts, and the
  weighted mean is then DPED's plain mean over the batch)."""
  counts = jnp.asarray(counts, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
  total = jnp.sum(counts, axis=0)
  ssim = jnp.sum(jnp.asarray(ssim_means) * counts, axis=0) / total
  cs = jnp.sum(jnp.asarray(cs_means) * counts, axis=0) / total
  return ms_ssim_dped_combine(ssim, cs, weights)


def ms_ssim_dped(
    pred: chex.Array,
    target: chex.Array,
    *,
    data_range: float = 1.0,
    pooled: bool = False,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> chex.Array:
  """DPED's ``MultiScaleSSIM`` (aiff22/DPED ``ssim.py``, the MS-SSIM its ``train_model.py`` logs), usable
  on images of any size (100x100 patches included: the window shrinks at the coarse scales, 11 x 11 at
  100, 50, 25 and 13 pixels, 7 x 7 at 7). Per image, ``[N]``; with ``pooled=True`` DPED's own reading,
  one value for the whole batch (every mean taken over all images at once), shape ``[]``. See
  :func:`ms_ssim_dped_terms`. Unlike :func:`ms_ssim` (Wang's ``msssim.m``) it needs no minimum size."""
  ssim_means, cs_means = ms_ssim_dped_terms(pred, target, data_range=data_range, levels=len(weights))
  if not pooled:
    return ms_ssim_dped_combine(ssim_means, cs_means, weights)
  counts = ms_ssim_dped_counts(pred.shape[1], pred.shape[2], pred.shape[3], len(weights))
  return ms_ssim_dped_pool(ssim_means, cs_means, [counts] * pred.shape[0], weights)

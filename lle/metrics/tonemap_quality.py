"""TMQI: the tone-mapped image quality index (Yeganeh and Wang 2013).

Source: H. Yeganeh and Z. Wang, "Objective Quality Assessment of Tone-Mapped Images", IEEE TIP 22(2),
2013, and the authors' reference ``TMQI.m`` (version 1.0, 2012). Every constant below is from that
code; the comments name the MATLAB line each step mirrors.

Roles: ``target`` is the linear HDR reference (any positive scale, RGB or single channel), ``pred``
the tone-mapped LDR image with values in ``[0, data_range]``; TMQI works on the 0-255 scale, so
``pred`` is multiplied by ``255 / data_range``.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats
import numpy as np

from lle.metrics import _filters
from lle.metrics import fidelity

# TMQI.m default parameters.
A = 0.8012  # weight of structural fidelity in Q
ALPHA = 0.3046  # exponent of S
BETA = 0.7088  # exponent of N
LEVELS = 5
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # MS-SSIM weights, finest scale first
C1 = 0.01  # StructuralFidelity/Slocal stabilising constants
C2 = 10.0
# StatisticalNaturalness: Beta model of mean block std (/64.29) and Gaussian model of mean intensity.
BETA_A, BETA_B, STD_SCALE = 4.4, 10.1, 64.29
MU_HAT, SIGMA_HAT = 115.94, 27.99
BLOCK = 11
# RGBtoYxy in TMQI.m: the Y row of the sRGB -> XYZ matrix.
_LUM = (0.2126, 0.7152, 0.0722)


class TMQIResult(NamedTuple):
  """Per-image TMQI parts, each of shape [N]."""

  q: chex.Array  # overall quality  Q = a S^alpha + (1 - a) N^beta
  s: chex.Array  # multi-scale structural fidelity
  n: chex.Array  # statistical naturalness


def _luminance(x: chex.Array) -> chex.Array:
  """[N, H, W, 1] luminance: Y of RGBtoYxy for RGB, the channel itself for gray."""
  if x.shape[-1] == 1:
    return x
  chex.assert_axis_dimension(x, -1, 3)
  return jnp.tensordot(x, jnp.asarray(_LUM, x.dtype), axes=[[-1], [0]])[..., None]


def _csf_threshold(sf: float) -> float:
  """Slocal: Mannos-Sakrison CSF at spatial frequency ``sf``; the mean of the signal-strength
  normal CDF is ``128 / (1.4 CSF)``."""
  csf = 100.0 * 2.6 * (0.0192 + 0.114 * sf) * np.exp(-((0.114 * sf) ** 1.1))
  return 128.0 / (1.4 * csf)


def _local_fidelity(h, l, hdr_gain, sf):
  """Slocal for one scale: mean of the structural-fidelity map ('valid' 11x11 Gaussian window).

  ``h`` is the HDR luminance mapped to [0, 1]; the reference works on ``hdr_gain * h`` (values up
  to 2^32 - 1). Moments of ``h`` are scaled afterwards, which is the same arithmetic but keeps
  float32 away from squaring 4e9-sized numbers.
  """
  taps = _filters.gaussian_kernel_1d(fidelity.SSIM_FILTER_SIZE, fidelity.SSIM_SIGMA)
  # Centred moments: the textbook blur(x^2) - blur(x)^2 is useless in float32 here (C2 = 10 does not
  # damp the error as SSIM's constants do, and a clamped zero variance next to a noisy covariance
  # makes the ratio explode).
  _, _, var_h, var_l, cov = _filters.local_moments_centred(h, l, taps)
  gain = hdr_gain[:, None, None, None]
  var_h = var_h * gain**2
  cov = cov * gain
  sig_h = jnp.sqrt(jnp.maximum(var_h, 0.0))
  sig_l = jnp.sqrt(jnp.maximum(var_l, 0.0))
  u = _csf_threshold(sf)
  # Both signals use the same threshold: u_ldr = u_hdr, sig = u / 3.
  p_h = jstats.norm.cdf(sig_h, u, u / 3.0)
  p_l = jstats.norm.cdf(sig_l, u, u / 3.0)
  s_map = ((2 * p_h * p_l + C1) / (p_h * p_h + p_l * p_l + C1)) * ((cov + C2) / (sig_h * sig_l + C2))
  return jnp.mean(s_map, axis=(1, 2, 3))


def _structural_fidelity(h, l, hdr_gain):
  """StructuralFidelity: five scales (sf = 16, 8, 4, 2, 1), ones(2)/4 'symmetric' filter and
  subsampling between them, ``S = prod s_l^w_l``."""
  s = jnp.ones(h.shape[0], h.dtype)
  sf = 32.0
  for level in range(LEVELS):
    sf /= 2.0
    s = s * _local_fidelity(h, l, hdr_gain, sf) ** WEIGHTS[level]
    h, l = _filters.box_downsample(h, 2), _filters.box_downsample(l, 2)
  return s


def _block_std_mean(l):
  """``mean2(blkproc(L, [11 11], @(x) std(x(:)) * ones(size(x))))``.

  blkproc zero-pads the image to whole 11x11 blocks (bottom and right), MATLAB's ``std`` is the
  sample (N - 1) deviation over all 121 values of a padded block, and the output is cropped back to
  the image size, so each block's std is weighted by how many of its pixels lie inside the image.
  """
  n, hgt, wid, _ = l.shape
  ph, pw = -hgt % BLOCK, -wid % BLOCK
  lp = jnp.pad(l[..., 0], ((0, 0), (0, ph), (0, pw)))
  bh, bw = (hgt + ph) // BLOCK, (wid + pw) // BLOCK
  blocks = lp.reshape(n, bh, BLOCK, bw, BLOCK)
  std = jnp.std(blocks, axis=(2, 4), ddof=1)
  # Pixels of each block inside the image.
  rows = np.minimum(BLOCK, hgt - BLOCK * np.arange(bh))
  cols = np.minimum(BLOCK, wid - BLOCK * np.arange(bw))
  area = jnp.asarray(np.outer(rows, cols), l.dtype)
  return jnp.sum(std * area, axis=(1, 2)) / (hgt * wid)


def _naturalness(l):
  """StatisticalNaturalness: Gaussian brightness model times Beta contrast model, each divided by
  its maximum (the pdf at the mode)."""
  u = jnp.mean(l, axis=(1, 2, 3))
  sig = _block_std_mean(l)
  mode = (BETA_A - 1.0) / (BETA_A + BETA_B - 2.0)
  pc = jstats.beta.pdf(sig / STD_SCALE, BETA_A, BETA_B) / jstats.beta.pdf(mode, BETA_A, BETA_B)
  pb = jstats.norm.pdf(u, MU_HAT, SIGMA_HAT) / jstats.norm.pdf(MU_HAT, MU_HAT, SIGMA_HAT)
  return pb * pc


def has_structural_fidelity(height: int, width: int) -> bool:
  """Whether an image of this size has TMQI's structural fidelity (at least 161 pixels a side)."""
  return -(-min(height, width) // 2 ** (LEVELS - 1)) >= fidelity.SSIM_FILTER_SIZE


@jax.jit
def tmqi(pred: chex.Array, target: chex.Array, *, data_range: float = 1.0) -> TMQIResult:
  """TMQI of tone-mapped ``pred`` (LDR, ``[0, data_range]``) against linear HDR ``target``.

  Steps of ``TMQI.m``:

  * luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of both images (RGBtoYxy), or the single
    channel of a gray image; the LDR luminance is on the 0-255 scale and is not renormalised;
  * HDR contrast stretch ``round((2^32 - 1) / (max - min)) * (Y - min)`` (the factor is rounded);
  * structural fidelity ``S``: per scale the map
    ``((2 p_h p_l + C1) / (p_h^2 + p_l^2 + C1)) * ((s_hl + C2) / (s_h s_l + C2))`` with local
    statistics under the 11x11 Gaussian window (sigma 1.5, 'valid'), ``p = Phi((s - u) / (u / 3))``
    and ``u = 128 / (1.4 CSF(sf))`` (Mannos CSF, sf = 16, 8, 4, 2, 1 cycles/degree), C1 = 0.01,
    C2 = 10; ``S = prod_l mean(map_l)^w_l`` with the MS-SSIM weights;
  * naturalness ``N = P_m P_d``: ``P_m = normpdf(mean(L), 115.94, 27.99)`` and
    ``P_d = betapdf(mean block std / 64.29, 4.4, 10.1)``, each divided by its peak value
    (block std: 11x11 blkproc, see :func:`_block_std_mean`);
  * ``Q = 0.8012 S^0.3046 + 0.1988 N^0.7088``.

  Structural fidelity needs at least 161 pixels per side (11 at the coarsest of five scales). Below
  that, as ``TMQI.m`` (whose 'valid' windows then leave an empty map, and ``mean2([])`` is NaN), ``s``
  and ``q`` are NaN and ``n`` is still scored. An exactly
  constant window in either image (clipped highlights, crushed shadows) makes the reference itself
  numerically arbitrary: its local variance there is rounding noise, which enters the map through
  ``s_h s_l``. Scores of images with such areas may differ from MATLAB's in the 5th decimal.
  """
  chex.assert_rank([pred, target], 4)
  chex.assert_equal_shape_prefix([pred, target], 3)
  l = _luminance(pred) * (255.0 / data_range)
  if not has_structural_fidelity(pred.shape[1], pred.shape[2]):
    n = _naturalness(l)
    nan = jnp.full_like(n, jnp.nan)
    return TMQIResult(q=nan, s=nan, n=n)
  yh = _luminance(target)
  lo = jnp.min(yh, axis=(1, 2, 3))
  span = jnp.max(yh, axis=(1, 2, 3)) - lo
  h = (yh - lo[:, None, None, None]) / span[:, None, None, None]
  # The reference multiplies (Y - min) by round((2^32 - 1) / span); on h = (Y - min) / span that is
  # a gain of round(...) * span.
  hdr_gain = jnp.floor((2.0**32 - 1.0) / span + 0.5) * span  # MATLAB round, halves up
  s = _structural_fidelity(h, l, hdr_gain)
  n = _naturalness(l)
  q = A * s**ALPHA + (1.0 - A) * n**BETA
  return TMQIResult(q=q, s=s, n=n)

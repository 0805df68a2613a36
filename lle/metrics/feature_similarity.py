"""FSITM: feature similarity index for tone-mapped images (Nafchi et al. 2015).

Source: H. Ziaei Nafchi, A. Shahkolaei, R. Farrahi Moghaddam, M. Cheriet, "FSITM: A Feature
Similarity Index For Tone-Mapped Images", IEEE Signal Processing Letters 22(8), 2015, and the
authors' reference ``FSITM.m`` with ``phasecong100`` (Kovesi's phase congruency, trimmed).

Roles: ``target`` is the linear HDR image (any positive scale), ``pred`` the tone-mapped LDR image in
``[0, data_range]``. The score is computed per colour channel; the phase angles it compares do not
change when either image is multiplied by a positive constant.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from lle.metrics import _phasecong

# FSITM.m: phasecong100(.., nscale=2, norient=2, minWaveLength, mult) with (2, 2) for the
# log-HDR and LDR channels and (8, 8) for the extra large-image term; sigmaOnf stays at 0.65.
NSCALE = 2
NORIENT = 2
FINE = (2.0, 2.0)  # (minWaveLength, mult)
COARSE = (8.0, 8.0)
# Images with at least 2 * 2^18 pixels blend in the coarse term with weight alpha = 1 - 1/r.
_PIXEL_UNIT = 2**18


class FSITMResult(NamedTuple):
  """Per-image FSITM, shape [N] each: per channel and the mean over the channels."""

  r: chex.Array
  g: chex.Array
  b: chex.Array
  mean: chex.Array


def coarse_weight(height: int, width: int) -> float:
  """FSITM.m: ``r = floor(H W / 2^18)``; ``alpha = 1 - 1/r`` if ``r > 1``, else 0."""
  r = (height * width) // _PIXEL_UNIT
  return 1.0 - 1.0 / r if r > 1 else 0.0


def _log_hdr_8bit(h: chex.Array) -> chex.Array:
  """``im2uint8(mat2gray(log(H)))`` with zeros first replaced by the smallest non-zero value, on
  ``[N, H, W]``: the log image stretched to [0, 1] by its own min/max and rounded to 8 bit."""
  big = jnp.finfo(h.dtype).max
  min_nonzero = jnp.min(jnp.where(h != 0, h, big), axis=(1, 2), keepdims=True)
  log_h = jnp.log(jnp.where(h == 0, min_nonzero, h))
  lo = jnp.min(log_h, axis=(1, 2), keepdims=True)
  hi = jnp.max(log_h, axis=(1, 2), keepdims=True)
  gray = jnp.where(hi > lo, (log_h - lo) / jnp.where(hi > lo, hi - lo, 1.0), 0.0)
  return jnp.floor(255.0 * jnp.clip(gray, 0.0, 1.0) + 0.5)  # im2uint8 rounds halves up


def _phase(x, wavelengths):
  min_wl, mult = wavelengths
  return _phasecong.feature_type(x, nscale=NSCALE, norient=NORIENT, min_wavelength=min_wl, mult=mult)


def _fsitm_channel(ldr: chex.Array, hdr: chex.Array) -> chex.Array:
  """FSITM.m for one channel of a batch ``[N, H, W]``: the fraction of pixels whose phase has the
  same sign (``> 0`` versus ``<= 0``) in the LDR image and in the (log-)HDR image."""
  alpha = coarse_weight(ldr.shape[1], ldr.shape[2])
  phase_h = _phase(_log_hdr_8bit(hdr), FINE)
  phase_l = _phase(ldr, FINE)
  if alpha:
    phase_h = alpha * _phase(hdr, COARSE) + (1.0 - alpha) * phase_h
    phase_l = alpha * _phase(ldr, COARSE) + (1.0 - alpha) * phase_l
  agree = (phase_l > 0) == (phase_h > 0)
  return jnp.mean(agree.astype(ldr.dtype), axis=(1, 2))


@jax.jit
def fsitm(pred: chex.Array, target: chex.Array, *, data_range: float = 1.0) -> FSITMResult:
  """FSITM of tone-mapped ``pred`` against linear HDR ``target``, per RGB channel and their mean.

  Per channel ``c`` (``FSITM(HDR, LDR, c)``): ``LogH = im2uint8(mat2gray(log H_c))`` (zeros replaced
  by the smallest non-zero value first); phase angles ``P = phasecong100(., 2 scales, 2 orientations,
  minWaveLength 2, mult 2)`` of ``LogH`` and of ``L_c``; for images of ``2 * 2^18`` pixels or more
  each phase is blended with ``phasecong100(., 2, 2, 8, 8)`` of the linear ``H_c`` / ``L_c`` with
  weight ``alpha = 1 - 1 / floor(HW / 2^18)``; the score is the fraction of pixels where the two
  phases are both positive or both non-positive. ``pred`` is put on the 0-255 scale first (the
  reference reads 8-bit files; the phase does not depend on the scale). Negative HDR values are
  clipped to 0. Single-channel images give that channel in ``r``, ``g``, ``b`` and ``mean``.
  """
  chex.assert_rank([pred, target], 4)
  chex.assert_equal_shape([pred, target])
  ldr = pred * (255.0 / data_range)
  hdr = jnp.maximum(target, 0.0)
  scores = [_fsitm_channel(ldr[..., c], hdr[..., c]) for c in range(pred.shape[-1])]
  if len(scores) == 1:
    scores = scores * 3
  if len(scores) != 3:
    raise ValueError(f'fsitm expects 1 or 3 channels, got {pred.shape[-1]}')
  return FSITMResult(r=scores[0], g=scores[1], b=scores[2], mean=sum(scores) / 3.0)

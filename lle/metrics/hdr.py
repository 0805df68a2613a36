"""Multi-exposure PSNR for linear HDR images (Munkberg et al. 2006, and the HDR Toolbox variant).

Inputs are NHWC float arrays of non-negative linear (scene-referred) values, any scale; results have
shape ``[N]``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import chex
import jax
import jax.numpy as jnp

from lle.metrics import _prep

# Munkberg et al. 2006 use gamma 2.2; stops -3..3 are the common default range for mPSNR.
DEFAULT_EXPOSURES = tuple(range(-3, 4))
GAMMA = 2.2
# HDR Toolbox lum.m: Rec. 709 luminance weights.
_LUM_709 = (0.2126, 0.7152, 0.0722)


def _round_half_up(x: chex.Array) -> chex.Array:
  # MATLAB's round() rounds halves away from zero; for x >= 0 that is floor(x + 0.5)
  # (jnp.round would round halves to even and change some 8-bit levels).
  return jnp.floor(x + 0.5)


def exposure_8bit(x: chex.Array, stop: chex.Numeric, *, gamma: float = GAMMA) -> chex.Array:
  """Munkberg's ``T(X) = [255 (2^c X)^(1/gamma)]_0^255``: expose by ``2^c``, gamma-encode, clamp to
  ``[0, 255]`` and round to an integer (halves up, as MATLAB). Negative inputs count as 0."""
  return _expose_encoded(_encode(x, gamma), stop, gamma)


def _encode(x, gamma):
  return jnp.maximum(x, 0.0) ** (1.0 / gamma)


def _expose_encoded(encoded, stop, gamma):
  # (2^c X)^(1/g) = 2^(c/g) X^(1/g): the power is taken once per image, not once per exposure.
  gain = 255.0 * jnp.exp2(jnp.asarray(stop, encoded.dtype) / gamma)
  return _round_half_up(jnp.clip(gain * encoded, 0.0, 255.0))


def _as_exposures(exposures: Iterable[int]) -> tuple[int, ...]:
  out = tuple(int(c) for c in exposures)
  if not out:
    raise ValueError('mpsnr: the exposure list is empty')
  return out


@functools.partial(jax.jit, static_argnames=('exposures', 'gamma', 'accumulate'))
def _mpsnr(pred, target, exposures, gamma, accumulate):
  _prep.check_pair(pred, target)
  ep, et = _encode(pred, gamma), _encode(target, gamma)
  sq = [jnp.square(_expose_encoded(ep, c, gamma) - _expose_encoded(et, c, gamma)) for c in exposures]
  # Mean over exposures, pixels and channels: Munkberg's sum over the three channels divided by
  # n*w*h, with the 3 in the numerator 3 * 255^2 turning that sum into this channel mean.
  err = jnp.mean(jnp.stack(sq), axis=(0, 2, 3, 4))
  if accumulate == 'sum':
    err = err * len(exposures)  # the HDR Toolbox adds the per-exposure MSEs up
  elif accumulate != 'mean':
    raise ValueError(f"mpsnr: accumulate must be 'mean' or 'sum', got {accumulate!r}")
  return 10.0 * jnp.log10(255.0**2 / err)


def mpsnr(
    pred: chex.Array,
    target: chex.Array,
    *,
    exposures: Iterable[int] = DEFAULT_EXPOSURES,
    gamma: float = GAMMA,
    accumulate: str = 'mean',
) -> chex.Array:
  """Multi-exposure PSNR (Munkberg, Clarberg, Hasselgren, Akenine-Moeller 2006, "High dynamic range
  texture compression for graphics hardware", Graphics Hardware 2006) per image, in dB.

  Each HDR image is "photographed" at the integer stops ``c`` in ``exposures`` (default -3..3):
  ``T(X) = [255 (2^c X)^(1/2.2)]_0^255`` per channel, clamped to ``[0, 255]`` and rounded to an
  integer (see :func:`exposure_8bit`). Then

      MSE   = 1 / (n w h) * sum_c sum_{x,y} (dR^2 + dG^2 + dB^2),  d = T(pred) - T(target),
      mPSNR = 10 log10(3 * 255^2 / MSE),

  with ``n`` the number of exposures: the squared error is *averaged* over exposures, pixels and
  channels. Linear values are used as given (no normalisation), so both images must share one scale.
  Identical images give ``inf``.

  The widely used HDR Toolbox ``mPSNR.m`` differs: it picks the exposure range from the image, drops
  exposures whose reference mean is outside (0.1, 0.9) and *sums* the per-exposure MSEs instead of
  averaging them, so it is lower by ``10 log10(n)`` dB for the same exposures. ``accumulate='sum'``
  applies only that summation to the exposures given here; :func:`mpsnr_hdrtoolbox` reproduces the
  whole ``mPSNR.m`` (range, filter and sum).
  """
  return _mpsnr(pred, target, _as_exposures(exposures), float(gamma), accumulate)


def luminance_709(x: chex.Array) -> chex.Array:
  """HDR Toolbox ``lum.m``: ``0.2126 R + 0.7152 G + 0.0722 B`` for RGB, the channel for gray. [N,H,W]."""
  if x.shape[-1] == 1:
    return x[..., 0]
  if x.shape[-1] != 3:
    return jnp.mean(x, axis=-1)
  return jnp.tensordot(x, jnp.asarray(_LUM_709, x.dtype), axes=[[-1], [0]])


def _auto_stops(pred, target):
  """HDR Toolbox automatic range: ``eMin = -round(log2(max L))``, ``eMax = -round(log2(min L))``,
  over the positive luminances of both images; widened by one each way when they coincide."""
  lp, lt = luminance_709(pred), luminance_709(target)
  big = jnp.finfo(pred.dtype).max
  axes = (1, 2)
  c_min = jnp.minimum(jnp.min(jnp.where(lp > 0, lp, big), axis=axes),
                      jnp.min(jnp.where(lt > 0, lt, big), axis=axes))
  c_max = jnp.maximum(jnp.max(jnp.where(lp > 0, lp, 0.0), axis=axes),
                      jnp.max(jnp.where(lt > 0, lt, 0.0), axis=axes))
  # MATLAB round (halves away from zero) of possibly negative log2 values.
  rnd = lambda v: jnp.sign(v) * jnp.floor(jnp.abs(v) + 0.5)
  e_min = -rnd(jnp.log2(c_max)).astype(jnp.int32)
  e_max = -rnd(jnp.log2(c_min)).astype(jnp.int32)
  same = e_min == e_max
  return jnp.where(same, e_min - 1, e_min), jnp.where(same, e_max + 1, e_max)


def _toolbox_one(pred, target, e_min, e_max, gamma):
  """Summed MSE over the accepted exposures of one image (HWC), and whether any was accepted."""
  ep, et = _encode(pred, gamma), _encode(target, gamma)

  def body(c, carry):
    acc, count = carry
    ref = _expose_encoded(et, c, gamma)
    mean = jnp.mean(ref / 255.0)
    ok = (mean > 0.1) & (mean < 0.9)
    err = jnp.mean(jnp.square(ref - _expose_encoded(ep, c, gamma)))
    return acc + jnp.where(ok, err, 0.0), count + ok.astype(jnp.int32)

  zero = jnp.zeros((), pred.dtype)
  return jax.lax.fori_loop(e_min, e_max + 1, body, (zero, jnp.zeros((), jnp.int32)))


@functools.partial(jax.jit, static_argnames=('exposures', 'gamma'))
def _mpsnr_toolbox(pred, target, exposures, gamma):
  _prep.check_pair(pred, target)
  n = pred.shape[0]
  if exposures is None:
    e_min, e_max = _auto_stops(pred, target)
  else:
    e_min = jnp.full((n,), min(exposures), jnp.int32)
    e_max = jnp.full((n,), max(exposures), jnp.int32)
  # A per-image trip count: vmap turns the loop into one masked while-loop over the batch.
  acc, count = jax.vmap(functools.partial(_toolbox_one, gamma=gamma))(pred, target, e_min, e_max)
  score = 20.0 * jnp.log10(255.0 / jnp.sqrt(acc))
  return jnp.where(count > 0, score, -1.0)


def mpsnr_hdrtoolbox(
    pred: chex.Array,
    target: chex.Array,
    *,
    exposures: Iterable[int] | None = None,
    gamma: float = GAMMA,
) -> chex.Array:
  """mPSNR as computed by the HDR Toolbox ``mPSNR.m`` (Banterle et al.), per image, in dB.

  Differences from Munkberg's definition (:func:`mpsnr`), reproduced on purpose:

  * range: with ``exposures=None`` the stops run from ``-round(log2(Lmax))`` to
    ``-round(log2(Lmin))``, ``L`` the Rec. 709 luminance of both images over their positive pixels
    (widened by one stop each way when the two coincide); otherwise from ``min(exposures)`` to
    ``max(exposures)``;
  * filter: a stop counts only if the mean of the exposed 8-bit reference over all pixels and
    channels, divided by 255, lies strictly between 0.1 and 0.9;
  * accumulation: the per-stop MSEs (mean over pixels and channels) are *summed*, not averaged, and
    ``mPSNR = 20 log10(255 / sqrt(sum))``;
  * an image for which no stop passes the filter scores -1.

  ``target`` is the reference (``img_ref``), ``pred`` the distorted image.
  """
  stops = None if exposures is None else _as_exposures(exposures)
  return _mpsnr_toolbox(pred, target, stops, float(gamma))

"""mPSNR (Munkberg 2006) and the HDR Toolbox mPSNR.m against float64 numpy transcriptions."""

import jax
import numpy as np
import pytest

from lle import metrics


def _t(x, c):
  """Munkberg's T(X) = [255 (2^c X)^(1/2.2)]_0^255, rounded to integers (MATLAB round, x >= 0)."""
  return np.floor(np.clip(255.0 * (2.0**c * x) ** (1 / 2.2), 0, 255) + 0.5)


def mpsnr_reference(pred, target, stops):
  """Munkberg et al. 2006 for one HWC image: MSE = 1/(n w h) sum_c sum_xy (dR^2+dG^2+dB^2),
  mPSNR = 10 log10(3 * 255^2 / MSE)."""
  n, (h, w, _) = len(stops), target.shape
  total = sum(np.sum((_t(pred, c) - _t(target, c)) ** 2) for c in stops)
  return 10 * np.log10(3 * 255.0**2 / (total / (n * w * h)))


def mpsnr_toolbox_reference(ref, dist, e_min=None, e_max=None):
  """HDR Toolbox mPSNR.m, line by line, for one HWC image (ref = reference, dist = distorted)."""
  if e_min is None:
    lum = lambda x: 0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2]
    l1, l2 = lum(ref), lum(dist)
    c_min = min(l1[l1 > 0].min(), l2[l2 > 0].min())
    c_max = max(l1[l1 > 0].max(), l2[l2 > 0].max())
    mround = lambda v: np.sign(v) * np.floor(abs(v) + 0.5)
    e_min, e_max = -mround(np.log2(c_max)), -mround(np.log2(c_min))
  if e_max == e_min:
    e_min, e_max = e_min - 1, e_max + 1
  mse_acc, used = 0.0, []
  for i in range(int(e_min), int(e_max) + 1):
    tref = _t(ref, i)
    val = np.mean(tref / 255.0)
    if 0.1 < val < 0.9:
      used.append(i)
      mse_acc += np.mean((tref - _t(dist, i)) ** 2)
  if not used:
    return -1.0
  return 20 * np.log10(255.0 / np.sqrt(mse_acc / 1))  # mPSNR.m divides by length(eMax) == 1


def test_mpsnr_matches_munkberg_exactly_in_float64(hdr_pair):
  pred, target = hdr_pair
  with jax.enable_x64(True):
    got = np.asarray(metrics.mpsnr(pred, target))
    got_wide = np.asarray(metrics.mpsnr(pred, target, exposures=range(-6, 3)))
  want = [mpsnr_reference(p, t, range(-3, 4)) for p, t in zip(pred, target)]
  want_wide = [mpsnr_reference(p, t, range(-6, 3)) for p, t in zip(pred, target)]
  np.testing.assert_allclose(got, want, rtol=1e-12)
  np.testing.assert_allclose(got_wide, want_wide, rtol=1e-12)
  assert np.all(np.abs(np.asarray(want) - np.asarray(want_wide)) > 0.05)


def test_mpsnr_float32_close_to_reference(hdr_pair):
  pred, target = hdr_pair
  got = np.asarray(metrics.mpsnr(pred.astype(np.float32), target.astype(np.float32)))
  want = [mpsnr_reference(p.astype(np.float32).astype(np.float64),
                          t.astype(np.float32).astype(np.float64), range(-3, 4))
          for p, t in zip(pred, target)]
  # float32 powers can move a value across a rounding boundary: allow a few 8-bit flips.
  np.testing.assert_allclose(got, want, atol=5e-3)


def test_mpsnr_rounds_to_8_bit():
  # A difference far below one 8-bit level at every exposure vanishes after rounding.
  x = np.full((1, 16, 16, 3), 0.3, np.float32)
  assert np.isinf(float(metrics.mpsnr(x * (1 + 1e-5), x)[0]))
  assert np.isfinite(float(metrics.mpsnr(x * 1.2, x)[0]))


@pytest.mark.parametrize('stops', [None, (-4, 2)])
def test_mpsnr_hdrtoolbox_matches_mpsnr_m(hdr_pair, stops):
  pred, target = hdr_pair
  with jax.enable_x64(True):
    got = np.asarray(metrics.mpsnr_hdrtoolbox(
        pred, target, exposures=None if stops is None else range(stops[0], stops[1] + 1)))
  lo, hi = (None, None) if stops is None else stops
  want = [mpsnr_toolbox_reference(t, p, lo, hi) for p, t in zip(pred, target)]
  np.testing.assert_allclose(got, want, rtol=1e-12)
  assert np.all(np.asarray(want) > 0)


def test_mpsnr_hdrtoolbox_is_summed_munkberg_without_filter():
  # With every exposure inside the filter, the toolbox value is Munkberg's minus 10 log10(n).
  rng = np.random.default_rng(5)
  t = rng.uniform(0.2, 0.3, (2, 24, 24, 3))
  p = t * rng.uniform(0.9, 1.1, t.shape)
  with jax.enable_x64(True):
    munk = np.asarray(metrics.mpsnr(p, t, exposures=range(-1, 2)))
    tool = np.asarray(metrics.mpsnr_hdrtoolbox(p, t, exposures=range(-1, 2)))
    summed = np.asarray(metrics.mpsnr(p, t, exposures=range(-1, 2), accumulate='sum'))
  np.testing.assert_allclose(munk - tool, 10 * np.log10(3), rtol=1e-9)
  np.testing.assert_allclose(summed, tool, rtol=1e-12)


def test_mpsnr_hdrtoolbox_no_valid_exposure_gives_minus_one():
  x = np.full((1, 8, 8, 3), 1e-6, np.float32)
  assert float(metrics.mpsnr_hdrtoolbox(x * 2, x, exposures=(0, 1))[0]) == -1.0


def test_mpsnr_scale_dependence(hdr_pair):
  # mPSNR works on absolute linear values: doubling both images equals shifting the stops by one.
  pred, target = hdr_pair
  with jax.enable_x64(True):
    a = np.asarray(metrics.mpsnr(2 * pred, 2 * target, exposures=range(-3, 4)))
    b = np.asarray(metrics.mpsnr(pred, target, exposures=range(-2, 5)))
  np.testing.assert_allclose(a, b, rtol=1e-12)

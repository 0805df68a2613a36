"""DPED's MS-SSIM (aiff22/DPED `ssim.py`, the score its `train_model.py` logs) against a numpy
transcription of that file, on a batch of 50 100x100 patches, per batch (DPED's whole-batch means) and per
image; and against the numbers the original `ssim.py` printed."""

import numpy as np
import pytest
from scipy import ndimage, signal

from lle import metrics
from lle.metrics import fidelity


def _gauss(size, sigma):
  """ssim.py `_FSpecialGauss`."""
  radius, offset, start, stop = size // 2, 0.0, -(size // 2), size // 2 + 1
  if size % 2 == 0:
    offset, stop = 0.5, stop - 1
  x, y = np.mgrid[offset + start:stop, offset + start:stop]
  g = np.exp(-((x**2 + y**2) / (2.0 * sigma**2)))
  return g / g.sum()


def _ssim_for_multiscale(img1, img2, max_val=255, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03):
  """ssim.py `_SSIMForMultiScale`: whole-batch means of the SSIM and contrast-structure maps."""
  _, height, width, _ = img1.shape
  size = min(filter_size, height, width)
  sigma = size * filter_sigma / filter_size
  window = np.reshape(_gauss(size, sigma), (1, size, size, 1))
  mu1 = signal.fftconvolve(img1, window, mode='valid')
  mu2 = signal.fftconvolve(img2, window, mode='valid')
  s11 = signal.fftconvolve(img1 * img1, window, mode='valid') - mu1 * mu1
  s22 = signal.fftconvolve(img2 * img2, window, mode='valid') - mu2 * mu2
  s12 = signal.fftconvolve(img1 * img2, window, mode='valid') - mu1 * mu2
  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
  return np.mean(((2.0 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)), np.mean(v1 / v2)


def _multiscale_ssim(img1, img2):
  """ssim.py `MultiScaleSSIM` (images x 255, max_val 255)."""
  weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
  box = np.ones((1, 2, 2, 1)) / 4.0
  im1, im2 = img1.astype(np.float64), img2.astype(np.float64)
  mssim, mcs = [], []
  for _ in range(5):
    s, cs = _ssim_for_multiscale(im1, im2)
    mssim.append(s)
    mcs.append(cs)
    im1, im2 = [ndimage.convolve(im, box, mode='reflect')[:, ::2, ::2, :] for im in (im1, im2)]
  return np.prod(np.array(mcs[:4]) ** weights[:4]) * (mssim[4] ** weights[4])


def _patches(n=50, seed=0):
  """`n` 100x100 crops of three scikit-image photos (targets) and an 'enhanced' version of each: gain,
  a one-pixel shift blend and noise, partly outside [0, 1] as DPED's unclipped output can be
  (tanh * 0.58 + 0.5 spans [-0.08, 1.08])."""
  from skimage import data
  rng = np.random.default_rng(seed)
  photos = [data.astronaut(), data.chelsea(), data.coffee()]
  target = np.empty((n, 100, 100, 3))
  for i in range(n):
    photo = photos[i % 3]
    top, left = rng.integers(0, photo.shape[0] - 100), rng.integers(0, photo.shape[1] - 100)
    target[i] = photo[top:top + 100, left:left + 100] / 255.0
  gain = rng.uniform(0.7, 1.1, (n, 1, 1, 1))
  pred = gain * (0.6 * target + 0.4 * np.roll(target, 1, axis=2)) + rng.normal(0, 0.03, target.shape)
  return np.clip(pred, -0.08, 1.08), target


# DPED's own ssim.py (aiff22/DPED at its current head, run unchanged with numpy 2.4.6, scipy 1.17.1 and
# TensorFlow 2.21.0 CPU, which it imports, in a separate environment) printed these for `_patches()`
# scored as MultiScaleSSIM(target * 255, pred * 255): the whole batch, and its first five patches one at a
# time.
SSIM_PY_BATCH = 0.9460266552509438
SSIM_PY_FIRST_FIVE = (0.9552554176888151, 0.941130704823885, 0.9604895792015803, 0.9016595512214151,
                      0.9458506905362317)


@pytest.fixture(scope='module')
def batch():
  return _patches()


def test_pooled_equals_ssim_py_transcription_on_50_patches(batch):
  pred, target = batch
  want = _multiscale_ssim(target * 255, pred * 255)
  assert 0.5 < want < 0.99  # a case where every scale matters, not a saturated one
  got = float(metrics.ms_ssim_dped(np.float32(pred), np.float32(target), pooled=True))
  np.testing.assert_allclose(got, want, rtol=2e-5)
  np.testing.assert_allclose(want, SSIM_PY_BATCH, rtol=1e-12)


def test_per_image_equals_ssim_py_on_single_patches(batch):
  pred, target = batch
  got = np.asarray(metrics.ms_ssim_dped(np.float32(pred[:5]), np.float32(target[:5])))
  want = [_multiscale_ssim(target[i:i + 1] * 255, pred[i:i + 1] * 255) for i in range(5)]
  np.testing.assert_allclose(got, want, rtol=2e-5)
  np.testing.assert_allclose(want, SSIM_PY_FIRST_FIVE, rtol=1e-12)
  # The whole-batch value is not the mean of the per-image ones (the product of powers is not linear).
  pooled = float(metrics.ms_ssim_dped(np.float32(pred[:5]), np.float32(target[:5]), pooled=True))
  assert abs(pooled - np.mean(got)) > 1e-4


def test_pooling_from_terms_weights_by_map_size(batch):
  """Images of different sizes pool by their number of map entries; images of one size by a plain mean,
  which is the whole-batch mean of ssim.py."""
  pred, target = (np.float32(x[:5]) for x in batch)
  ssim, cs = fidelity.ms_ssim_dped_terms(pred, target)
  counts = fidelity.ms_ssim_dped_counts(100, 100, 3)
  assert counts == [90 * 90 * 3, 40 * 40 * 3, 15 * 15 * 3, 3 * 3 * 3, 1 * 1 * 3]  # windows 11, 11, 11, 11, 7
  pooled = fidelity.ms_ssim_dped_pool(ssim, cs, [counts] * 5)
  np.testing.assert_allclose(pooled, _multiscale_ssim(batch[1][:5] * 255, batch[0][:5] * 255), rtol=2e-5)
  small_ssim, small_cs = fidelity.ms_ssim_dped_terms(pred[:1, :60, :80], target[:1, :60, :80])
  small = fidelity.ms_ssim_dped_counts(60, 80, 3)
  mixed = fidelity.ms_ssim_dped_pool(np.concatenate([ssim[:1], small_ssim]), np.concatenate([cs[:1], small_cs]),
                                     [counts, small])
  weight = np.asarray(counts, float) / (np.asarray(counts) + np.asarray(small))
  ssim_mix = weight * np.asarray(ssim[0]) + (1 - weight) * np.asarray(small_ssim[0])
  cs_mix = weight * np.asarray(cs[0]) + (1 - weight) * np.asarray(small_cs[0])
  w = np.asarray(fidelity.MS_SSIM_WEIGHTS)
  np.testing.assert_allclose(mixed, np.prod(cs_mix[:4] ** w[:4]) * ssim_mix[4] ** w[4], rtol=1e-5)


def test_identical_images_score_one_and_the_registry_names_it(batch):
  target = np.float32(batch[1][:5])
  np.testing.assert_allclose(metrics.ms_ssim_dped(target, target), 1.0, atol=1e-5)
  out = metrics.compute('ms_ssim_dped', np.float32(batch[0][:5]), target)
  assert out['ms_ssim_dped'].shape == (5,)

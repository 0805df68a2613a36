"""MSE / PSNR / SSIM / MS-SSIM against scikit-image and against the MATLAB formulas."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import metrics as skm

from lle import metrics

SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _f32(x):
  return np.asarray(x, np.float32)


@pytest.fixture(scope='module')
def pairs(photos, distorted):
  """Photo pairs plus two random pairs (uniform noise against a smoothed copy), float32."""
  rng = np.random.default_rng(2)
  noise = rng.uniform(0.0, 1.0, (2,) + photos.shape[1:])
  smooth = np.clip(0.7 * noise + 0.3 * np.roll(noise, 2, axis=1), 0, 1)
  return _f32(np.concatenate([distorted, smooth])), _f32(np.concatenate([photos, noise]))


def test_mse_psnr_match_skimage(pairs):
  pred, target = pairs
  got_mse = np.asarray(metrics.mse(pred, target))
  got_psnr = np.asarray(metrics.psnr(pred, target))
  for i in range(len(pred)):
    want_mse = skm.mean_squared_error(target[i].astype(np.float64), pred[i].astype(np.float64))
    want_psnr = skm.peak_signal_noise_ratio(target[i], pred[i], data_range=1.0)
    np.testing.assert_allclose(got_mse[i], want_mse, rtol=1e-5)
    np.testing.assert_allclose(got_psnr[i], want_psnr, atol=1e-5 * abs(want_psnr))
  assert got_mse.shape == (len(pred),)


def test_psnr_data_range_255_matches_skimage(pairs):
  pred, target = pairs
  got = np.asarray(metrics.psnr(pred * 255, target * 255, data_range=255.0))
  want = [skm.peak_signal_noise_ratio(t * 255, p * 255, data_range=255.0)
          for p, t in zip(pred, target)]
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ssim_matches_skimage_colour(pairs):
  pred, target = pairs
  got = np.asarray(metrics.ssim(pred, target))
  want = [skm.structural_similarity(t, p, channel_axis=-1, data_range=1.0, **SK_SSIM)
          for p, t in zip(pred, target)]
  np.testing.assert_allclose(got, want, atol=1e-5)
  # The photo pairs are similar, the random ones are not: the scores must spread.
  assert got.max() - got.min() > 0.2


def test_ssim_matches_skimage_gray_and_range(pairs):
  pred, target = pairs
  p, t = pred[:, :, :, 1:2] * 255, target[:, :, :, 1:2] * 255
  got = np.asarray(metrics.ssim(p, t, data_range=255.0))
  want = [skm.structural_similarity(b[..., 0], a[..., 0], data_range=255.0, **SK_SSIM)
          for b, a in zip(p, t)]
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_dm_pix_agrees_with_ours(pairs):
  # dm_pix clips negative variances and filters with jnp.convolve; on real images it must agree.
  import dm_pix
  pred, target = pairs
  np.testing.assert_allclose(metrics.ssim(pred, target), dm_pix.ssim(pred, target), atol=1e-5)


def _matlab_y(rgb01):
  """MATLAB rgb2ycbcr luma on double input: Y in [16, 235] / 255."""
  return (16.0 + 65.481 * rgb01[..., 0] + 128.553 * rgb01[..., 1] + 24.966 * rgb01[..., 2]) / 255.0


def test_psnr_l_matches_skimage_lab(pairs):
  """psnr_l: PSNR of CIELAB L (peak 100) of scikit-image's rgb2lab, on [0, 1] and on the 0-255 scale, and
  the registered metric reports it."""
  from skimage import color as skcolor
  pred, target = pairs
  got = np.asarray(metrics.fidelity.psnr_lightness(pred, target))
  got_255 = np.asarray(metrics.METRICS['psnr_l'](pred * 255, target * 255, data_range=255.0)['psnr_l'])
  for i in range(len(pred)):
    want = skm.peak_signal_noise_ratio(skcolor.rgb2lab(target[i].astype(np.float64))[..., 0],
                                       skcolor.rgb2lab(pred[i].astype(np.float64))[..., 0], data_range=100.0)
    np.testing.assert_allclose(got[i], want, atol=2e-4 * abs(want))
    np.testing.assert_allclose(got_255[i], want, atol=2e-4 * abs(want))
  # Lightness alone: a change of colour at equal L costs RGB PSNR, not psnr_l.
  red, green = (_f32(skcolor.lab2rgb(np.full((1, 8, 8, 3), [50.0, a, 0.0]))) for a in (20.0, -20.0))
  assert float(metrics.psnr(red, green)[0]) < 25.0
  assert float(metrics.fidelity.psnr_lightness(red, green)[0]) > 60.0


def test_psnr_y_matches_matlab_formula(pairs):
  pred, target = (x.astype(np.float64) for x in pairs)
  got = np.asarray(metrics.psnr(_f32(pred), _f32(target), y_channel=True, crop_border=4))
  yp, yt = _matlab_y(pred)[:, 4:-4, 4:-4], _matlab_y(target)[:, 4:-4, 4:-4]
  want = 10 * np.log10(1.0 / np.mean((yp - yt) ** 2, axis=(1, 2)))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_psnr_y_uint8_path_matches_matlab(pairs):
  # MATLAB: rgb2ycbcr(uint8) returns uint8 Y; psnr on uint8 uses a peak of 255.
  pred, target = (np.round(x.astype(np.float64) * 255) for x in pairs)
  got = np.asarray(metrics.psnr(_f32(pred + 0.3), _f32(target - 0.2), data_range=255.0,
                                y_channel=True, quantize=True))
  yp = np.floor(_matlab_y(pred / 255) * 255 + 0.5)
  yt = np.floor(_matlab_y(target / 255) * 255 + 0.5)
  want = 10 * np.log10(255.0**2 / np.mean((yp - yt) ** 2, axis=(1, 2)))
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_identical_images_give_maximum(pairs):
  _, target = pairs
  assert np.all(np.asarray(metrics.mse(target, target)) == 0)
  assert np.all(np.isinf(np.asarray(metrics.psnr(target, target))))
  np.testing.assert_allclose(metrics.ssim(target, target), 1.0, atol=1e-6)


def _matlab_box_down(x, f):
  """imfilter(x, ones(f)/f^2, 'symmetric', 'same') then x(1:f:end, 1:f:end), written out: MATLAB
  anchors the box at floor((f+1)/2) (1-based), so it covers offsets -(c-1)..(f-c)."""
  c = (f + 1) // 2
  xp = np.pad(x, ((c - 1, f - c), (c - 1, f - c)), mode='symmetric')
  out = np.zeros_like(x)
  for di in range(f):
    for dj in range(f):
      out += xp[di:di + x.shape[0], dj:dj + x.shape[1]]
  return (out / f**2)[::f, ::f]


def _matlab_ssim_reference(x, y, data_range):
  """Wang's ssim.m (2009) on one grayscale float64 image: downsample, then ssim_index 'valid'."""
  f = max(1, int(np.floor(min(x.shape) / 256 + 0.5)))
  if f > 1:
    x, y = _matlab_box_down(x, f), _matlab_box_down(y, f)
  return skm.structural_similarity(x, y, data_range=data_range, **SK_SSIM), f


@pytest.mark.parametrize('size, factor', [((400, 420), 2), ((650, 660), 3)])
def test_ssim_downsample_matches_matlab_ssim_m(size, factor):
  rng = np.random.default_rng(3)
  t = ndimage.gaussian_filter(rng.uniform(0, 255, size), 2.0)
  p = t + rng.normal(0, 8, size)
  got = float(metrics.ssim(_f32(p)[None, ..., None], _f32(t)[None, ..., None], data_range=255.0,
                           downsample=True)[0])
  want, f = _matlab_ssim_reference(p, t, 255.0)
  plain = skm.structural_similarity(p, t, data_range=255.0, **SK_SSIM)
  assert f == factor
  assert abs(got - want) < 1e-5
  assert abs(want - plain) > 1e-3  # downsampling must change the score on these sizes


def _box2(x):
  """msssim.m between scales: imfilter(ones(2)/4, 'symmetric', 'same') then x(1:2:end, 1:2:end)."""
  xp = np.pad(x, ((0, 1), (0, 1)), mode='symmetric')
  return ((xp[:-1, :-1] + xp[1:, :-1] + xp[:-1, 1:] + xp[1:, 1:]) / 4)[::2, ::2]


def _ms_ssim_reference(x, y, data_range):
  """Wang's msssim.m on one grayscale float64 image (5 scales, 'valid' Gaussian windows)."""
  w = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
  g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
  win = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  out = 1.0
  for j in range(5):
    filt = lambda z: ndimage.correlate(z, win)[5:-5, 5:-5]
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    if j < 4:
      out *= np.mean(cs) ** w[j]
      x, y = _box2(x), _box2(y)
    else:
      out *= np.mean(cs * (2 * mx * my + c1) / (mx**2 + my**2 + c1)) ** w[j]
  return out


def test_ms_ssim_matches_msssim_m():
  rng = np.random.default_rng(4)
  t = ndimage.gaussian_filter(rng.uniform(0, 1, (2, 181, 190)), (0, 1.5, 1.5))
  p = np.clip(t + rng.normal(0, 0.03, t.shape), 0, 1)
  got = np.asarray(metrics.ms_ssim(_f32(p)[..., None], _f32(t)[..., None]))
  want = [_ms_ssim_reference(a, b, 1.0) for a, b in zip(p, t)]
  np.testing.assert_allclose(got, want, atol=2e-5)
  np.testing.assert_allclose(metrics.ms_ssim(_f32(t)[..., None], _f32(t)[..., None]), 1.0, atol=1e-6)
  with pytest.raises(ValueError, match='176'):
    metrics.ms_ssim(_f32(p)[:, :100, :100, None], _f32(t)[:, :100, :100, None])

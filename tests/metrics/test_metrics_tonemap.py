"""TMQI and FSITM against float64 numpy transcriptions of the authors' MATLAB code."""

import jax
import numpy as np
import pytest
from scipy import ndimage, stats

from lle import metrics

# --------------------------------------------------------------------------- TMQI.m transcription


def _mround(x):
  return np.floor(x + 0.5)


def _gauss_window():
  g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
  w = np.outer(g, g)
  return w / w.sum()


def _filter2_valid(img, win):
  r = win.shape[0] // 2
  return ndimage.correlate(img, win)[r:-r, r:-r]


def _box2(x):
  xp = np.pad(x, ((0, 1), (0, 1)), mode='symmetric')
  return ((xp[:-1, :-1] + xp[1:, :-1] + xp[:-1, 1:] + xp[1:, 1:]) / 4)[::2, ::2]


def _slocal(h, l, sf):
  win = _gauss_window()
  mu1, mu2 = _filter2_valid(h, win), _filter2_valid(l, win)
  s1 = np.sqrt(np.maximum(0, _filter2_valid(h * h, win) - mu1 * mu1))
  s2 = np.sqrt(np.maximum(0, _filter2_valid(l * l, win) - mu2 * mu2))
  s12 = _filter2_valid(h * l, win) - mu1 * mu2
  csf = 100 * 2.6 * (0.0192 + 0.114 * sf) * np.exp(-((0.114 * sf) ** 1.1))
  u = 128 / (1.4 * csf)
  p1, p2 = stats.norm.cdf(s1, u, u / 3), stats.norm.cdf(s2, u, u / 3)
  smap = ((2 * p1 * p2 + 0.01) / (p1**2 + p2**2 + 0.01)) * ((s12 + 10) / (s1 * s2 + 10))
  return smap.mean()


def tmqi_reference(hdr, ldr):
  """TMQI.m (v1.0) for one HWC pair: hdr linear, ldr on 0-255."""
  y = lambda x: x @ np.array([0.2126, 0.7152, 0.0722])
  lh, ll = y(hdr), y(ldr)
  lh = _mround((2**32 - 1) / (lh.max() - lh.min())) * (lh - lh.min())
  s_local, f = [], 32.0
  h, l = lh, ll
  for _ in range(5):
    f /= 2
    s_local.append(_slocal(h, l, f))
    h, l = _box2(h), _box2(l)
  s = np.prod(np.array(s_local) ** np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333]))
  # StatisticalNaturalness with blkproc: zero padding, per-block sample std, output cropped.
  rows, cols = ll.shape
  padded = np.zeros((-(-rows // 11) * 11, -(-cols // 11) * 11))
  padded[:rows, :cols] = ll
  std_img = np.zeros_like(padded)
  for i in range(0, padded.shape[0], 11):
    for j in range(0, padded.shape[1], 11):
      std_img[i:i + 11, j:j + 11] = np.std(padded[i:i + 11, j:j + 11], ddof=1)
  sig = std_img[:rows, :cols].mean()
  mode = 3.4 / 12.5
  pc = stats.beta.pdf(sig / 64.29, 4.4, 10.1) / stats.beta.pdf(mode, 4.4, 10.1)
  pb = stats.norm.pdf(ll.mean(), 115.94, 27.99) / stats.norm.pdf(115.94, 115.94, 27.99)
  n = pb * pc
  return 0.8012 * s**0.3046 + 0.1988 * n**0.7088, s, n


def test_tmqi_matches_reference_float64(tonemap_pairs):
  ldr, hdr = tonemap_pairs
  with jax.enable_x64(True):
    got = metrics.tmqi(ldr, hdr, data_range=255.0)
  want = np.array([tmqi_reference(h, l) for l, h in zip(ldr, hdr)])
  np.testing.assert_allclose(np.stack([got.q, got.s, got.n], 1), want, rtol=1e-9)
  assert np.ptp(want[:, 2]) > 0.05  # the three tone mappings differ in naturalness


def test_tmqi_float32_close_and_ldr_scale(tonemap_pairs):
  ldr, hdr = tonemap_pairs
  want = np.array([tmqi_reference(h, l) for l, h in zip(ldr, hdr)])
  got = metrics.tmqi(np.float32(ldr / 255.0), np.float32(hdr))  # [0, 1] LDR, data_range 1
  np.testing.assert_allclose(np.stack([got.q, got.s, got.n], 1), want, atol=2e-4)


def test_tmqi_hdr_scale_invariant_and_size_check(tonemap_pairs):
  ldr, hdr = tonemap_pairs
  with jax.enable_x64(True):
    a = metrics.tmqi(ldr, hdr, data_range=255.0)
    b = metrics.tmqi(ldr, hdr * 37.0, data_range=255.0)
  np.testing.assert_allclose(a.q, b.q, rtol=1e-7)
  # Under 161 pixels a side TMQI.m's coarsest 'valid' map is empty: S and Q are NaN, N is scored.
  with jax.enable_x64(True):
    small = metrics.tmqi(ldr[:, :150], hdr[:, :150], data_range=255.0)
  with np.errstate(invalid='ignore'), pytest.warns(RuntimeWarning):
    want = np.array([tmqi_reference(h, l) for l, h in zip(ldr[:, :150], hdr[:, :150])])
  assert np.isnan(want[:, :2]).all() and np.isnan(np.asarray(small.q)).all() and np.isnan(np.asarray(small.s)).all()
  np.testing.assert_allclose(small.n, want[:, 2], rtol=1e-9)


# ------------------------------------------------------------ FSITM.m / phasecong100 transcription


def _phasecong100(im, nscale, norient, min_wl, mult, sigma_onf=0.65):
  """phasecong100 as written: one filter per scale and orientation, energies accumulated."""
  rows, cols = im.shape
  rng = lambda n: (np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1) if n % 2
                   else np.arange(-n / 2, n / 2) / n)
  x, y = np.meshgrid(rng(cols), rng(rows))
  radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
  theta = np.fft.ifftshift(np.arctan2(-y, x))
  radius[0, 0] = 1
  lp = np.fft.ifftshift(1.0 / (1.0 + (np.sqrt(x**2 + y**2) / 0.45) ** 30))
  fft_im = np.fft.fft2(im)
  energy = np.zeros((3, rows, cols))
  for o in range(norient):
    angl = o * np.pi / norient
    ds = np.sin(theta) * np.cos(angl) - np.cos(theta) * np.sin(angl)
    dc = np.cos(theta) * np.cos(angl) + np.sin(theta) * np.sin(angl)
    spread = (np.cos(np.minimum(np.abs(np.arctan2(ds, dc)) * norient / 2, np.pi)) + 1) / 2
    sum_e = np.zeros((rows, cols))
    sum_o = np.zeros((rows, cols))
    for s in range(nscale):
      fo = 1.0 / (min_wl * mult**s)
      log_gabor = np.exp(-(np.log(radius / fo)) ** 2 / (2 * np.log(sigma_onf) ** 2)) * lp
      log_gabor[0, 0] = 0
      eo = np.fft.ifft2(fft_im * log_gabor * spread)
      sum_e += eo.real
      sum_o += eo.imag
    energy[0] += sum_e
    energy[1] += np.cos(angl) * sum_o
    energy[2] += np.sin(angl) * sum_o
  return np.arctan2(energy[0], np.sqrt(energy[1] ** 2 + energy[2] ** 2))


def fsitm_reference(hdr_ch, ldr_ch):
  """FSITM.m for one channel (2-D arrays)."""
  n = hdr_ch.size
  r = n // 2**18
  alpha = 1 - 1 / r if r > 1 else 0
  log_h = hdr_ch.copy()
  log_h[hdr_ch == 0] = hdr_ch[hdr_ch != 0].min()
  log_h = np.log(log_h)
  log_h = _mround(255 * (log_h - log_h.min()) / (log_h.max() - log_h.min()))
  ph8 = _phasecong100(hdr_ch, 2, 2, 8, 8) if alpha else 0
  pl8 = _phasecong100(ldr_ch, 2, 2, 8, 8) if alpha else 0
  ph = alpha * ph8 + (1 - alpha) * _phasecong100(log_h, 2, 2, 2, 2)
  pl = alpha * pl8 + (1 - alpha) * _phasecong100(ldr_ch, 2, 2, 2, 2)
  return np.mean((pl <= 0) & (ph <= 0) | (pl > 0) & (ph > 0))


def test_fsitm_matches_reference_float64(tonemap_pairs):
  ldr, hdr = tonemap_pairs
  hdr = hdr.copy()
  hdr[0, :3, :3, :] = 0.0  # exercise the zero replacement before the log
  with jax.enable_x64(True):
    got = metrics.fsitm(ldr, hdr, data_range=255.0)
  want = np.array([[fsitm_reference(h[..., c], l[..., c]) for c in range(3)]
                   for l, h in zip(ldr, hdr)])
  np.testing.assert_allclose(np.stack([got.r, got.g, got.b], 1), want, atol=1e-12)
  np.testing.assert_allclose(got.mean, want.mean(1), atol=1e-12)
  assert want.min() > 0.5 and want.max() < 0.99


def test_fsitm_float32_close_and_scale_invariant(tonemap_pairs):
  ldr, hdr = tonemap_pairs
  want = np.array([[fsitm_reference(h[..., c], l[..., c]) for c in range(3)]
                   for l, h in zip(ldr, hdr)])
  got = metrics.fsitm(np.float32(ldr / 255.0), np.float32(hdr))
  np.testing.assert_allclose(np.stack([got.r, got.g, got.b], 1), want, atol=3e-3)
  # Phase angles do not depend on the scale of either image (up to float32 rounding).
  scaled = metrics.fsitm(np.float32(ldr / 255.0 * 0.5), np.float32(hdr * 8.0))
  np.testing.assert_allclose(scaled.mean, got.mean, atol=3e-3)


def test_fsitm_large_image_blends_coarse_phase():
  # 512 x 1024 = 2 * 2^18 pixels: alpha = 1/2, the (8, 8) phasecong term enters.
  rng = np.random.default_rng(7)
  hdr = np.exp(ndimage.gaussian_filter(rng.normal(0, 2, (512, 1024)), 3))
  ldr = _mround(255 * (hdr / (1 + hdr)) ** (1 / 2.2)) + rng.integers(-2, 3, hdr.shape)
  assert metrics.feature_similarity.coarse_weight(512, 1024) == 0.5
  with jax.enable_x64(True):
    got = float(metrics.fsitm(ldr[None, ..., None], hdr[None, ..., None], data_range=255.0).mean[0])
  assert abs(got - fsitm_reference(hdr, ldr)) < 1e-12

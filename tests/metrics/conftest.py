"""Shared inputs for the metric tests: real colour photos from scikit-image plus random images."""

import numpy as np
import pytest
from skimage import data


def _photo(name: str, h: int = 96, w: int = 120) -> np.ndarray:
  img = getattr(data, name)()
  # A central crop keeps the jitted shapes small and identical across photos (one compile).
  y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
  return img[y0:y0 + h, x0:x0 + w, :3].astype(np.float64) / 255.0


@pytest.fixture(scope='session')
def photos() -> np.ndarray:
  """Three real photos (astronaut, chelsea, coffee), [3, 96, 120, 3] float64 in [0, 1]."""
  return np.stack([_photo(n) for n in ('astronaut', 'chelsea', 'coffee')])


@pytest.fixture(scope='session')
def distorted(photos) -> np.ndarray:
  """The photos with Gaussian noise, a brightness change and a blur-like shift, clipped to [0, 1]."""
  rng = np.random.default_rng(0)
  out = photos * np.array([0.9, 1.0, 1.1]).reshape(3, 1, 1, 1)
  out = 0.5 * out + 0.5 * np.roll(out, 1, axis=2)
  out = out + rng.normal(0.0, 0.04, out.shape)
  return np.clip(out, 0.0, 1.0)


@pytest.fixture(scope='session')
def hdr_pair(photos):
  """Linear HDR-like images: inverse-gamma photos boosted to a wide range, and a distorted copy."""
  rng = np.random.default_rng(1)
  lin = photos**2.2
  # A smooth gain field spanning about 2^-4..2^6 gives several useful exposures.
  gain = np.exp2(np.linspace(-4.0, 6.0, lin.shape[2]))[None, None, :, None]
  target = lin * gain + 1e-4
  pred = target * np.exp(rng.normal(0.0, 0.1, target.shape))
  return pred, target


@pytest.fixture(scope='session')
def tonemap_pairs():
  """(ldr 0-255 float64, hdr linear float64) pairs [3, 176, 184, 3] for TMQI and FSITM.

  HDR: inverse-gamma photos times a smooth gain spanning 2^-3..2^7 plus a small floor; LDR: a
  Reinhard-style global operator of that HDR, gamma-encoded on the 0-255 scale, different per image
  (key values 0.5, 2, 8) so the scores spread.
  """
  photos = np.stack([_photo(n, 176, 184) for n in ('astronaut', 'chelsea', 'coffee')])
  gain = np.exp2(np.linspace(-3.0, 7.0, 184))[None, None, :, None]
  # A little multiplicative noise: no window is exactly flat (where the MATLAB code's variance is
  # rounding noise, see tonemap_quality.tmqi).
  noise = np.exp(np.random.default_rng(3).normal(0.0, 0.01, photos.shape))
  hdr = (photos**2.2 * gain + 1e-3) * noise
  keys = np.array([0.5, 2.0, 8.0]).reshape(3, 1, 1, 1)
  scaled = hdr * keys / np.exp(np.mean(np.log(hdr), axis=(1, 2, 3), keepdims=True))
  # Not rounded, and with a little noise: an exactly flat LDR window (e.g. clipped highlights) makes
  # TMQI's reference arithmetic arbitrary (its variance there is rounding noise).
  dither = np.random.default_rng(4).normal(0.0, 0.3, photos.shape)
  ldr = 255.0 * (scaled / (1.0 + scaled)) ** (1 / 2.2) + dither
  return ldr, hdr

"""Image pairs for the HDR-VDP-2 reference values: each is made here from a seeded recipe (the test and
the reference run use the same arrays), in absolute cd/m^2."""
import numpy as np
from scipy import ndimage


def _field(rng, shape, sigma):
  """A smooth random field scaled to [0, 1]."""
  f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
  return (f - f.min()) / (f.max() - f.min())


def _blur(image, sigma):
  axes = (sigma, sigma, 0) if image.ndim == 3 else (sigma, sigma)
  return ndimage.gaussian_filter(image, axes, mode="nearest")


def ramp_noise(rng):  # the HDR-VDP documentation's example, smaller: a log ramp 0.1..1000 cd/m^2 + noise
  ref = np.logspace(np.log10(0.1), np.log10(1000), 96)[None, :] * np.ones((64, 1))
  return ref * (1 + (rng.random(ref.shape) - 0.5) * 0.1), ref, "luminance"


def lum_blur(rng):  # 100 x 75 texture spanning 1..10^3 cd/m^2, Gaussian blur sigma 1.5 px
  ref = 10 ** (3 * _field(rng, (100, 75), 2.0))
  return _blur(ref, 1.5), ref, "luminance"


def rgb_tone(rng):  # 90 x 120 colour HDR image (0.1..10^4 cd/m^2), compressed by a power tone curve
  ref = 10 ** (-1 + 5 * _field(rng, (90, 120, 3), 3.0))
  return 100 * (ref / 100) ** 0.8, ref, "rgb-bt.709"


def rgb_noise(rng):  # 128 x 128, 5 % multiplicative Gaussian noise
  ref = 10 ** (0.5 + 2.5 * _field(rng, (128, 128, 3), 2.5))
  return ref * np.clip(1 + 0.05 * rng.standard_normal(ref.shape), 0.5, 1.5), ref, "rgb-bt.709"


def rgb_blur(rng):  # 77 x 130 (odd, not a power of two), blur sigma 1 px
  ref = 10 ** (1 + 2 * _field(rng, (77, 130, 3), 1.5))
  return _blur(ref, 1.0), ref, "rgb-bt.709"


def lum_faint_noise(rng):  # 80 x 80 near-threshold noise (0.6 %) on a 20..200 cd/m^2 texture
  ref = 20 * 10 ** _field(rng, (80, 80), 4.0)
  return ref * (1 + 0.006 * rng.standard_normal(ref.shape)), ref, "luminance"


def rgb_faint_tone(rng):  # 96 x 72 colour image, a tone curve close to identity (exponent 0.99)
  ref = 10 ** (0.5 + 2 * _field(rng, (96, 72, 3), 3.0))
  return 100 * (ref / 100) ** 0.99, ref, "rgb-bt.709"


def rgb_faint_blur(rng):  # 70 x 110 dim image (0.05..5 cd/m^2: rods matter), blur sigma 0.5 px
  ref = 0.05 * 10 ** (2 * _field(rng, (70, 110, 3), 2.0))
  return _blur(ref, 0.5), ref, "rgb-bt.709"


CASES = {f.__name__: f for f in (ramp_noise, lum_blur, rgb_tone, rgb_noise, rgb_blur, lum_faint_noise,
                                 rgb_faint_tone, rgb_faint_blur)}


def make_pair(name):
  """(test, reference, colour encoding) of case `name`, float64."""
  return CASES[name](np.random.default_rng(list(CASES).index(name)))

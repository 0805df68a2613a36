"""The training recipe of Montulet & Briassouli 2019 (sec. 3-4), for `tmgan`.

From every image, `patches_per_image` random, partly overlapping `crop_size` patch pairs, kept only if
non-flat by a Canny edge test; the input is darkened by removing the gamma, dividing by a random integer
in [1, 128] and re-applying the gamma; model input and target are the LAB lightness L / 100 in [0, 1].

The paper darkens each image once and saves it; here the divisor is drawn per (image, patch) from the
index-seeded generator, so a batch is still a pure function of (seed, step).
"""
import grain
import numpy as np


def darken(image: np.ndarray, divisor: float, *, gamma: float = 2.2) -> np.ndarray:
  """[0, 1] gamma-encoded image -> the same scene `divisor` times darker: ((x^gamma) / d)^(1/gamma)."""
  return ((np.clip(image, 0.0, 1.0) ** gamma) / divisor) ** (1.0 / gamma)


def edge_fraction(rgb: np.ndarray, *, sigma: float) -> float:
  """Fraction of pixels that Canny (on the grey image, skimage's default hysteresis) marks as edges."""
  import skimage.color
  import skimage.feature
  return float(skimage.feature.canny(skimage.color.rgb2gray(rgb), sigma=sigma).mean())


def lightness(rgb: np.ndarray) -> np.ndarray:
  """LAB L / 100 (D65), [H, W, 3] in [0, 1] -> [H, W, 1] in [0, 1]."""
  import skimage.color
  return (skimage.color.rgb2lab(np.clip(rgb, 0.0, 1.0))[..., :1] / 100.0).astype(np.float32)


class MontuletPatch(grain.transforms.RandomMap):
  """A stored pair -> one non-flat, darkened, lightness patch pair {'input', 'target'} [S, S, 1].

  Up to `config.canny_max_tries` positions are drawn; the first whose target patch has an edge fraction
  of at least `config.canny_min_edge_fraction` is kept (the last one if none passes, so every index
  yields a patch: a flat image cannot stall training).
  """

  def __init__(self, data_config, make_pair):
    self.config = data_config
    self.make_pair = make_pair

  def random_map(self, example, rng: np.random.Generator):
    c = self.config
    pair = self.make_pair(example, c)
    size = c.crop_size
    h, w = pair["input"].shape[:2]
    if h < size or w < size:
      raise ValueError(f"example {example.get('name')!r} of size {h}x{w} is smaller than "
                       f"config.data.crop_size={size}")
    for _ in range(c.canny_max_tries):
      top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
      target = pair["target"][top:top + size, left:left + size]
      if edge_fraction(target, sigma=c.canny_sigma) >= c.canny_min_edge_fraction:
        break
    divisor = int(rng.integers(c.darken_min, c.darken_max + 1))
    inp = darken(pair["input"][top:top + size, left:left + size], divisor, gamma=c.darken_gamma)
    return {"input": lightness(inp), "target": lightness(target)}

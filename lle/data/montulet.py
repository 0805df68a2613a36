"""The training recipe of Montulet & Briassouli 2019 (sec. 3-4), for `tmgan`.

From every image, `patches_per_image` random, partly overlapping `crop_size` patch pairs, kept only if
non-flat by a Canny edge test; the input is darkened by removing the gamma, dividing by a random integer
in [1, 128] and re-applying the gamma. Patches stay RGB: the method takes their CIELAB lightness itself
(`lle.methods.tmgan`), so that its output keeps the input's colour and is scored as RGB.

The paper darkens each image once and saves it; here the divisor is drawn per (image, patch) from the
index-seeded generator, so a batch is still a pure function of (seed, step). Held-out inputs are darkened
once each, by a divisor fixed by the image's name and the seed (`eval_divisor`), as the paper's saved
test inputs.
"""
import hashlib

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


def eval_divisor(name: str, seed: int, low: int, high: int) -> int:
  """The darkening divisor of held-out image `name`: uniform in [low, high], the same on every run with
  this seed (not Python's salted hash)."""
  digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
  return int(np.random.default_rng(int.from_bytes(digest[:8], "little")).integers(low, high + 1))


class MontuletPatch(grain.transforms.RandomMap):
  """A stored pair -> one non-flat, darkened patch pair {'input', 'target'} [S, S, 3] in [0, 1].

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
    return {"input": inp.astype(np.float32), "target": target.astype(np.float32)}

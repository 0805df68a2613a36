"""The training recipe of Montulet & Briassouli 2019 (sec. 3-4), for `tmgan`.

From every image, `patches_per_image` random, partly overlapping `crop_size` patch pairs, kept only if
non-flat by a Canny edge test; the input is darkened by removing the gamma, dividing by a random integer
in [1, 128] and re-applying the gamma, then (`darken_quantize_8bit`) rounded to the 8-bit image the paper
saved (sec. 4: "The resulting darkened images are saved and used as input"). Patches stay RGB: the method
takes their CIELAB lightness itself (`lle.methods.tmgan`), so that its output keeps the input's colour
and is scored as RGB.

Two ways to draw the patches (`fixed_patches`): drawn once, as the paper's saved set of about 25,000
samples (sec. 4.2), each patch's position and divisor a pure function of (seed, image, patch number) so
that every epoch reads the same set in a new order; or drawn afresh every time an image comes round. Both
keep a batch a pure function of (seed, step). Held-out inputs are darkened once each, by a divisor fixed
by the image's name and the seed (`eval_divisor`), as the paper's saved test inputs.
"""
import hashlib

import grain
import numpy as np


def darken(image: np.ndarray, divisor: float, *, gamma: float = 2.2) -> np.ndarray:
  """[0, 1] gamma-encoded image -> the same scene `divisor` times darker: ((x^gamma) / d)^(1/gamma)."""
  return ((np.clip(image, 0.0, 1.0) ** gamma) / divisor) ** (1.0 / gamma)


def darken_input(image: np.ndarray, divisor: float, data_config) -> np.ndarray:
  """`darken` with the config's gamma, then, if `data_config.darken_quantize_8bit`, the 8-bit file the
  paper saved, read back as k / 255 (float32, as the pipeline reads 8-bit files; rounded to nearest)."""
  from lle.evaluate import quantize
  dark = darken(image, divisor, gamma=data_config.darken_gamma).astype(np.float32)
  return quantize(dark, "round") if data_config.darken_quantize_8bit else dark


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
    inp = darken_input(pair["input"][top:top + size, left:left + size], divisor, c)
    return {"input": inp, "target": target.astype(np.float32)}


def patch_stream(source, data_config, make_pair, seed: int) -> grain.MapDataset:
  """The endless stream of patch pairs: `patches_per_image` per stored pair, shuffled anew each epoch.
  With `data_config.fixed_patches` patch number j (image j // k's patch j % k) is drawn from a generator
  seeded by (seed, j): epoch after epoch the same set. Else each is drawn from a generator of its position
  in the stream (grain's random_map, after the shuffle): a fresh set each epoch."""
  k = data_config.patches_per_image
  patch = MontuletPatch(data_config, make_pair)
  if data_config.fixed_patches:
    # A plain map keyed by the patch number: grain seeds a random_map by the stream position it is asked
    # for, which grows from epoch to epoch even when the map comes before the shuffle.
    def fixed(j):
      return patch.random_map(source[int(j) // k], np.random.default_rng([seed, int(j)]))
    return grain.MapDataset.range(len(source) * k).map(fixed).seed(seed).shuffle().repeat(None)
  ds = grain.MapDataset.range(len(source) * k).map(lambda i: source[int(i) // k]).seed(seed)
  return ds.shuffle().repeat(None).random_map(patch)

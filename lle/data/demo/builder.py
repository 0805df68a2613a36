"""`lle_demo`: a small paired data set built offline from real colour photos inside installed wheels.

Config `itmn` (inverse tone mapping, Ning et al. 2018 sec. 4):
  * `hdr`: a synthetic HDR scene in absolute luminance (cd/m^2, float32, linear BT.709 RGB). The photo is
    sRGB-decoded, lit by a smooth random illumination field of +-`ILLUMINATION_STOPS` stops (a few broad
    Gaussian light pools), its near-white regions are expanded by up to `HIGHLIGHT_BOOST` times (the
    clipped highlights an 8-bit photo has lost), and it is scaled so that diffuse white is
    `DIFFUSE_WHITE_NITS`, clipped to [`MIN_NITS`, `PEAK_NITS`].
  * `ldr`: the paper's input, Reinhard et al. 2002's global operator (key 0.18, white = brightest pixel)
    applied to `hdr`, sRGB-encoded and quantised to 8 bits.
  The pipelines encode `hdr` into [0, 1] with SMPTE ST 2084 (PQ), the 10-bit HDR10/BT.2100 coding the
  paper's 10-bit data uses (see `lle.color.pq_encode`); primaries stay BT.709.

Splits: `train` holds `TRAIN_VARIANTS` differently lit scenes per training photo; `test` holds one scene
per held-out photo (`TEST_PHOTOS`), photos never seen in training. Photos are downscaled so that the
longer side is at most `MAX_SIDE` pixels, to keep the demo fast on a laptop CPU.
"""
import hashlib

import numpy as np
import tensorflow_datasets as tfds

from lle import color

MAX_SIDE = 640
TRAIN_VARIANTS = 4
ILLUMINATION_STOPS = 2.0
HIGHLIGHT_BOOST = 8.0
DIFFUSE_WHITE_NITS = 200.0
MIN_NITS = 0.005
PEAK_NITS = 4000.0

# name -> loader; all ship inside the scikit-image and matplotlib wheels (no network).
PHOTOS = (
    "astronaut", "rocket", "stereo_motorcycle_left", "stereo_motorcycle_right", "hubble_deep_field",
    "immunohistochemistry", "retina", "chelsea", "coffee", "grace_hopper",
)
TEST_PHOTOS = ("chelsea", "coffee", "grace_hopper")


def load_photo(name: str) -> np.ndarray:
  """Returns the named photo as uint8 [H, W, 3]."""
  import skimage.data
  if name == "grace_hopper":
    import matplotlib.cbook
    import matplotlib.image
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
      return np.asarray(matplotlib.image.imread(f, format="jpg"))
  if name.startswith("stereo_motorcycle_"):
    left, right, _ = skimage.data.stereo_motorcycle()
    return left if name.endswith("left") else right
  if name not in PHOTOS:
    raise ValueError(f"unknown demo photo {name!r}; expected one of {PHOTOS}")
  return getattr(skimage.data, name)()


def _downscale(photo: np.ndarray) -> np.ndarray:
  import cv2
  h, w = photo.shape[:2]
  scale = MAX_SIDE / max(h, w)
  if scale >= 1:
    return photo
  size = (round(w * scale), round(h * scale))
  return cv2.resize(photo, size, interpolation=cv2.INTER_AREA)


def _seed(name: str, variant: int) -> int:
  return int.from_bytes(hashlib.sha256(f"{name}/{variant}".encode()).digest()[:8], "little")


def illumination_field(shape, rng: np.random.Generator, *, stops: float, num_lights: int = 4):
  """Smooth multiplicative light field in [2^-stops, 2^stops]: a sum of broad Gaussian pools."""
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
  field = np.zeros((h, w))
  for _ in range(num_lights):
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    sigma = rng.uniform(0.2, 0.6) * max(h, w)
    field += rng.uniform(-1, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
  field /= max(np.abs(field).max(), 1e-6)
  return 2.0 ** (stops * field)


def synthesize_hdr(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """uint8 sRGB photo -> synthetic HDR scene in cd/m^2 (float32 [H, W, 3]); see the module docstring."""
  linear = np.asarray(color.srgb_to_linear(photo.astype(np.float64) / 255.0))
  light = illumination_field(photo.shape[:2], rng, stops=ILLUMINATION_STOPS)
  lum = np.asarray(color.luminance(linear))
  t = np.clip((lum - 0.7) / 0.3, 0.0, 1.0)
  highlight = 1.0 + (HIGHLIGHT_BOOST - 1.0) * t * t * (3 - 2 * t)  # smoothstep from lum 0.7 to 1
  nits = linear * (light * highlight)[..., None] * DIFFUSE_WHITE_NITS
  return np.clip(nits, MIN_NITS, PEAK_NITS).astype(np.float32)


def tone_map_reinhard_8bit(hdr: np.ndarray) -> np.ndarray:
  """The iTMN input: Reinhard's global operator, sRGB-encoded, quantised to uint8."""
  display = np.asarray(color.reinhard_global(hdr.astype(np.float64)))
  return np.round(np.asarray(color.linear_to_srgb(display)) * 255.0).astype(np.uint8)


class LleDemo(tfds.core.GeneratorBasedBuilder):
  """Paired demo data made from photos shipped with scikit-image and matplotlib."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "iTMN pairs: Reinhard-global LDR inputs, synthetic HDR targets."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="itmn", description="LDR (Reinhard global, 8-bit) -> HDR (cd/m^2)."),
  ]

  def _info(self):
    image = lambda dtype: tfds.features.Tensor(shape=(None, None, 3), dtype=dtype, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "ldr": image(np.uint8),
            "hdr": image(np.float32),
            "name": tfds.features.Text(),
        }),
        homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is on disk already
    train = [p for p in PHOTOS if p not in TEST_PHOTOS]
    return {
        "train": self._generate_examples(train, TRAIN_VARIANTS),
        "test": self._generate_examples(TEST_PHOTOS, 1),
    }

  def _generate_examples(self, photos, variants):
    for name in photos:
      photo = _downscale(load_photo(name))
      for variant in range(variants):
        rng = np.random.default_rng(_seed(name, variant))
        hdr = synthesize_hdr(photo, rng)
        key = f"{name}_{variant}"
        yield key, {"ldr": tone_map_reinhard_8bit(hdr), "hdr": hdr, "name": key}

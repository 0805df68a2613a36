"""`lle_demo`: a small paired data set built offline from real colour photos inside installed wheels.

Config `itmn` (inverse tone mapping, Ning et al. 2018 sec. 4):
  * `hdr`: a synthetic HDR scene in absolute luminance (cd/m^2, float32, linear BT.709 RGB). The photo is
    sRGB-decoded, lit by a smooth random illumination field of +-`ILLUMINATION_STOPS` stops (a few broad
    Gaussian light pools), its near-white regions are expanded by up to `HIGHLIGHT_BOOST` times (the
    clipped highlights an 8-bit photo has lost), and it is scaled so that diffuse white is
    `DIFFUSE_WHITE_NITS`, clipped to [`MIN_NITS`, `PEAK_NITS`].
  * `ldr`: the network's input, made as the paper made its inputs, "tone mapping operators including
    ReinhardTMO [16] and so on" (sec. 4): each example gets its own operator and parameters, drawn by
    `lle.data.hdr.tonemap.draw` from the example's name and `TONE_MAP_SEED` (Reinhard global with a
    drawn key and white point, Drago with a drawn bias, or a camera exposure with clipped highlights
    and a camera response curve), applied to `hdr`, sRGB-encoded and quantised to 8 bits.
  * `operator`: that operator and its parameters, e.g. `drago(bias=0.7712)`.
  The pipelines encode `hdr` into [0, 1] with SMPTE ST 2084 (PQ), the 10-bit HDR10/BT.2100 coding the
  paper's 10-bit data uses (see `lle.color.pq_encode`); primaries stay BT.709.

Config `lowlight` (low-light enhancement: GLADNet, NEID):
  * `high`: the photo itself (uint8 sRGB), the well-exposed target.
  * `low`: the same scene captured with less light, simulated on linear values: the photo is sRGB-decoded
    (IEC 61966-2-1), multiplied by an exposure factor drawn log-uniformly from `EXPOSURE_RANGE`
    ([1/20, 1/3], i.e. 1.6 to 4.3 stops under), then passes a Poisson-Gaussian sensor: photon shot
    noise with `PHOTONS_AT_WHITE` photo-electrons for a linear value of 1 (Poisson, per pixel and
    channel) plus Gaussian read noise of standard deviation `READ_NOISE` (in units of white), is
    clipped to [0, 1], sRGB-encoded again and quantised to 8 bits. The noise is signal-dependent as in
    a real raw capture (Foi et al. 2008's Poisson-Gaussian model), and quantisation after the dark
    exposure loses the shadow levels a real 8-bit dark photo loses.
  * Exposures of the `train` split are stratified: a training photo's `LOWLIGHT_TRAIN_VARIANTS` captures
    draw theirs from as many equal bins of log exposure, so every photo is seen from the brightest to the
    darkest end of the range that held-out photos are drawn from (a held-out photo's exposure is drawn
    from the whole range).

Splits (both configs): `train` holds `TRAIN_VARIANTS` (itmn) or `LOWLIGHT_TRAIN_VARIANTS` (lowlight)
differently lit (or exposed) versions of each training photo; `test` holds one per held-out photo
(`TEST_PHOTOS`), photos never seen in training. Photos are downscaled so that the longer side is at most
`MAX_SIDE` pixels, to keep the demo fast on a laptop CPU.
"""
import hashlib

import numpy as np
import tensorflow_datasets as tfds

from lle import color
from lle.data import errors
from lle.data.hdr import tonemap

MAX_SIDE = 640
TRAIN_VARIANTS = 4
# lowlight: one capture per eighth of the log-exposure range (1.6-4.3 stops under: ~0.34 stops a bin). With 4
# free draws the 28 training captures left the darkest 0.9 stops nearly empty (one capture past 3.4 stops)
# while a held-out photo fell there (chelsea, 4.1 stops under).
LOWLIGHT_TRAIN_VARIANTS = 8
ILLUMINATION_STOPS = 2.0
HIGHLIGHT_BOOST = 8.0
DIFFUSE_WHITE_NITS = 200.0
MIN_NITS = 0.005
PEAK_NITS = 4000.0
EXPOSURE_RANGE = (1.0 / 20.0, 1.0 / 3.0)  # lowlight: exposure factor, drawn log-uniformly
PHOTONS_AT_WHITE = 1000.0  # lowlight: photo-electrons for a linear value of 1 at the original exposure
READ_NOISE = 0.002  # lowlight: Gaussian read noise, standard deviation in units of white (2 e-)
TONE_MAP_SEED = 0  # itmn: the seed of each example's tone-mapping operator (tonemap.draw)

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


def tone_map_8bit(hdr: np.ndarray, key: str) -> tuple[np.ndarray, str]:
  """The iTMN input of the example `key`: its drawn operator (`tonemap.draw`), sRGB-encoded, quantised to
  uint8; and the operator's description."""
  tone_map = tonemap.draw(key, TONE_MAP_SEED)
  return tonemap.to_ldr(tone_map, hdr.astype(np.float64)), str(tone_map)


def exposure_bin(variant: int, variants: int) -> tuple[float, float]:
  """The exposure range of a split's `variant`-th capture of a photo: the `variant`-th of `variants` equal
  bins of log `EXPOSURE_RANGE` (one variant: the whole range)."""
  low, high = np.log(EXPOSURE_RANGE[0]), np.log(EXPOSURE_RANGE[1])
  step = (high - low) / variants
  return float(np.exp(low + variant * step)), float(np.exp(low + (variant + 1) * step))


def darken(photo: np.ndarray, rng: np.random.Generator, exposure_range=EXPOSURE_RANGE) -> np.ndarray:
  """uint8 sRGB photo -> simulated low-light capture, uint8 [H, W, 3], its exposure factor drawn
  log-uniformly from `exposure_range`; see the module docstring."""
  linear = np.asarray(color.srgb_to_linear(photo.astype(np.float64) / 255.0))
  low, high = np.log(exposure_range[0]), np.log(exposure_range[1])
  exposure = np.exp(rng.uniform(low, high))
  electrons = rng.poisson(linear * exposure * PHOTONS_AT_WHITE)
  signal = electrons / PHOTONS_AT_WHITE + rng.normal(0.0, READ_NOISE, size=linear.shape)
  return np.round(np.asarray(color.linear_to_srgb(np.clip(signal, 0.0, 1.0))) * 255.0).astype(np.uint8)


_RELEASE_NOTES = {
    "1.0.0": "iTMN pairs: Reinhard-global LDR inputs, synthetic HDR targets.",
    "1.1.0": "Adds the `lowlight` config: simulated low-light captures (`low`) of the photos (`high`). "
             "The `itmn` config's examples are unchanged, so that config keeps version 1.0.0 and "
             "copies built before stay valid.",
    "1.2.0": "The `itmn` config stores `hdr` uncompressed (the same values): a training crop no longer "
             "inflates the whole zlib-coded float32 photo first. The `lowlight` config is unchanged "
             "(version 1.1.0).",
    "2.0.0": "The `itmn` config's LDR inputs come from a seeded per-example mixture of operators (Reinhard "
             "with drawn key and white point, Drago with a drawn bias, a camera exposure with clipped "
             "highlights), named in the new `operator` feature, instead of Reinhard's operator alone. "
             "The `hdr` targets are unchanged; the `lowlight` config is unchanged (version 1.1.0).",
    "2.1.0": "The `lowlight` config's training split holds 8 captures per photo (were 4), their exposures "
             "stratified over the range (one per eighth of it in log exposure), so that the darkest "
             "held-out captures have training captures as dark; the held-out captures are unchanged. The "
             "`itmn` config is unchanged (version 2.0.0).",
}


class LleDemo(errors.ArrayRecordByDefault, tfds.core.GeneratorBasedBuilder):
  """Paired demo data made from photos shipped with scikit-image and matplotlib."""

  VERSION = tfds.core.Version("2.1.0")
  RELEASE_NOTES = _RELEASE_NOTES
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="itmn", version="2.0.0", release_notes=_RELEASE_NOTES,
                              description="LDR (a seeded mixture of tone-mapping operators, 8-bit) -> HDR (cd/m^2)."),
      tfds.core.BuilderConfig(name="lowlight", version="2.1.0", release_notes=_RELEASE_NOTES,
                              description="Low-light (darkened, noisy, 8-bit) -> the photo (8-bit)."),
  ]

  def _info(self):
    image = lambda dtype, encoding="zlib": tfds.features.Tensor(shape=(None, None, 3), dtype=dtype,
                                                                encoding=encoding)
    if self.builder_config.name == "lowlight":
      features = {"low": image(np.uint8), "high": image(np.uint8)}
    else:
      # float32 HDR photos barely compress (the demo: 109 MB with zlib, 110 MB without), and inflating
      # one for a training crop took 97 ms for a 640 x 432 photo against 14 ms to read it stored raw.
      features = {"ldr": image(np.uint8), "hdr": image(np.float32, "bytes"), "operator": tfds.features.Text()}
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({**features, "name": tfds.features.Text()}),
        homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is on disk already
    train = [p for p in PHOTOS if p not in TEST_PHOTOS]
    lowlight = self.builder_config.name == "lowlight"
    return {
        "train": self._generate_examples(train, LOWLIGHT_TRAIN_VARIANTS if lowlight else TRAIN_VARIANTS),
        "test": self._generate_examples(TEST_PHOTOS, 1),
    }

  def _generate_examples(self, photos, variants):
    lowlight = self.builder_config.name == "lowlight"
    for name in photos:
      photo = _downscale(load_photo(name))
      for variant in range(variants):
        key = f"{name}_{variant}"
        if lowlight:
          rng = np.random.default_rng(_seed(f"lowlight/{name}", variant))
          yield key, {"low": darken(photo, rng, exposure_bin(variant, variants)), "high": photo, "name": key}
        else:
          rng = np.random.default_rng(_seed(name, variant))
          hdr = synthesize_hdr(photo, rng)
          ldr, operator = tone_map_8bit(hdr, key)
          yield key, {"ldr": ldr, "hdr": hdr, "name": key, "operator": operator}

"""`hdr`: (LDR, HDR) pairs for inverse tone mapping, made from a folder of HDR images, as Ning et al. 2018
(iTMN, sec. 4) made theirs: HDR images resized to 512x512, LDR inputs made by a tone-mapping operator.

Input files (any folder depth below the manual folder):
  * Radiance `.hdr` / `.pic`, read with OpenCV as linear float RGB;
  * OpenEXR `.exr`, where OpenCV has an OpenEXR codec (the PyPI wheels have none: the build stops and
    says how to convert);
  * 16-bit PNG / TIFF (and float TIFF), read as linear values (x / 65535). An 8-bit file is not HDR and is
    reported as a bad file.
If the manual folder has `train/` and `test/` sub-folders, they are the splits; otherwise a fraction
`test_fraction` (at least one image) of the sorted file list is drawn for `test` with
`np.random.default_rng(seed)`.

Each image is resized to `size` x `size` (the paper's 512; aspect ratio not kept, as in the paper; area
averaging when shrinking, bilinear when enlarging; `size=0` keeps the size), negative values are clipped to
0, and it is brought to absolute luminance (cd/m^2) by `scaling`:
  * `peak` (default): the brightest pixel's luminance (after resizing) becomes `peak_nits` (1000 cd/m^2,
    the HDR luminance of the paper's comparisons, sec. 4);
  * `diffuse_white`: the log-average luminance becomes middle grey, 0.18 x `diffuse_white_nits` (203
    cd/m^2, ITU-R BT.2408's HDR reference white);
  * `absolute`: the file is calibrated; values are multiplied by `nits_per_unit`.
Values are then clipped to [0, 10000] cd/m^2 (the range of SMPTE ST 2084).

Features (the names of `lle_demo/itmn`, so an iTMN config can switch `data.name`):
  * `hdr`: float32 [size, size, 3], linear BT.709 RGB in cd/m^2;
  * `ldr`: uint8 [size, size, 3], `operator` applied to `hdr`, sRGB-encoded (see `tonemap.py`);
  * `name`: the file's path below its split folder, without extension; `operator`: the operator used,
    with its parameters for `mixture` (e.g. `reinhard(key=0.1234, white=0.8)`).

Configs: `mixture` (per image Reinhard with a drawn key and white point, Drago with a drawn bias, or a
camera exposure with clipped highlights: iTMN's "tone mapping operators including ReinhardTMO and so on",
sec. 4; seeded per image), `reinhard` (the one operator the paper names), `drago`, `exposure`. Other
sizes and scalings: `make_config(...)` or the flags `--size`, `--scaling`, `--peak_nits`,
`--diffuse_white_nits`, `--nits_per_unit` of `python -m lle.data.build hdr/OPERATOR`; their config names
carry every non-default value (e.g. `reinhard_size256`).
"""
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lle import color
from lle.data import errors
from lle.data.hdr import tonemap

HOMEPAGE = "http://markfairchild.org/HDR.html"  # a public HDR collection (iTMN's own set is private)
HDR_EXTENSIONS = (".hdr", ".pic", ".exr", ".png", ".tif", ".tiff")
MAX_NITS = 10000.0  # SMPTE ST 2084 peak
SCALINGS = ("peak", "diffuse_white", "absolute")


@dataclasses.dataclass
class HdrConfig(tfds.core.BuilderConfig):
  operator: str = "reinhard"  # one of tonemap.OPERATORS or `mixture`
  size: int = 512  # Ning et al. 2018 sec. 4: "resized in 512x512"; 0 keeps the size
  scaling: str = "peak"  # see the module docstring
  peak_nits: float = 1000.0  # Ning et al. 2018 sec. 4: HDR luminance 1000 nits
  diffuse_white_nits: float = 203.0  # ITU-R BT.2408 HDR reference white
  nits_per_unit: float = 1.0  # `absolute` scaling
  test_fraction: float = 0.1  # not in the paper; used without train/ and test/ folders
  seed: int = 0  # test draw and `mixture` choices


RELEASE_NOTES = {
    "1.0.0": "Resized HDR in cd/m^2; Reinhard, Drago, exposure or mixed LDR.",
    "2.0.0": "`mixture` draws each image's parameters too: Reinhard with key in [0.09, 0.36] and white at "
             "0.5-1 x the brightest luminance, Drago with bias in [0.7, 0.9], or a camera exposure with "
             "0.5-5% of the pixels clipped and Ying et al.'s response curve (`operator` names them). The "
             "other configs are unchanged and keep version 1.0.0.",
}
VERSIONS = {"reinhard": "1.0.0", "drago": "1.0.0", "exposure": "1.0.0", "camera": "2.0.0", "mixture": "2.0.0"}

_DEFAULTS = HdrConfig(name="defaults")
_FIELDS = ("size", "scaling", "peak_nits", "diffuse_white_nits", "nits_per_unit", "test_fraction", "seed")


def make_config(operator: str = "reinhard", **overrides) -> HdrConfig:
  """A config for `operator` with other fields changed; its name carries every non-default value."""
  unknown = set(overrides) - set(_FIELDS)
  if unknown:
    raise ValueError(f"unknown hdr config field(s) {sorted(unknown)}; expected some of {_FIELDS}")
  tonemap.choose(operator, "", 0)  # validates the operator
  scaling = overrides.get("scaling", _DEFAULTS.scaling)
  if scaling not in SCALINGS:
    raise ValueError(f"unknown scaling {scaling!r}; expected one of {SCALINGS}")
  name = operator
  for field in _FIELDS:
    if field in overrides and overrides[field] != getattr(_DEFAULTS, field):
      value = overrides[field]
      name += f"_{field}{value:g}" if isinstance(value, float) else f"_{field}{value}"
  name = name.replace(".", "p").replace("-", "m")
  return HdrConfig(name=name, operator=operator, description=f"LDR by {operator}; HDR in cd/m^2.",
                   version=VERSIONS[operator], release_notes=RELEASE_NOTES, **overrides)


CONFIGS = tuple(make_config(op) for op in ("reinhard", "drago", "exposure", "mixture"))


class ExrUnsupportedError(RuntimeError):
  """This OpenCV has no OpenEXR codec (not a problem of the file)."""


def _opencv_reads_exr() -> bool:
  import cv2
  try:
    ok, _ = cv2.imencode(".exr", np.zeros((1, 1, 3), np.float32))
    return bool(ok)
  except cv2.error:
    return False


def read_hdr(path: epath.Path) -> np.ndarray:
  """A linear HDR file -> float32 RGB [H, W, 3] (relative units); `BadFileError` for a bad file."""
  suffix = path.suffix.lower()
  if suffix == ".exr":
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    if not _opencv_reads_exr():
      raise ExrUnsupportedError(
          f"cannot read {path}: this OpenCV build has no OpenEXR codec (the PyPI wheels have none). Convert "
          f"the .exr files to Radiance .hdr or 16-bit TIFF (e.g. `pfsin x.exr | pfsout x.hdr`, or "
          f"`oiiotool x.exr -o x.hdr`), or install an OpenCV built with OpenEXR.")
  image = errors.decode_image(path, hdr=suffix in (".hdr", ".pic", ".exr"))
  if image.dtype == np.uint16:
    image = image.astype(np.float32) / 65535.0
  elif image.dtype == np.uint8:
    raise errors.BadFileError(path, "8-bit image: not HDR (use .hdr, .exr, or 16-bit PNG / TIFF)")
  image = image.astype(np.float32)
  if not np.all(np.isfinite(image)):
    raise errors.BadFileError(path, "image holds NaN or infinite values")
  return np.maximum(image, 0.0)


def resize(image: np.ndarray, size: int) -> np.ndarray:
  import cv2
  if not size:
    return image
  h, w = image.shape[:2]
  shrink = h >= size and w >= size
  out = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
  return np.maximum(out, 0.0)


def to_nits(image: np.ndarray, config: HdrConfig, path=None) -> np.ndarray:
  """Relative linear RGB -> cd/m^2 by `config.scaling` (module docstring), clipped to [0, 10000]."""
  lum = np.asarray(color.luminance(image.astype(np.float64)))
  if config.scaling == "peak":
    if lum.max() <= 0:
      raise errors.BadFileError(path or "?", "image is black: cannot scale its peak")
    scale = config.peak_nits / lum.max()
  elif config.scaling == "diffuse_white":
    if lum.max() <= 0:
      raise errors.BadFileError(path or "?", "image is black: cannot scale its log-average")
    scale = 0.18 * config.diffuse_white_nits / float(np.exp(np.mean(np.log(1e-6 + lum))))
  elif config.scaling == "absolute":
    scale = config.nits_per_unit
  else:
    raise ValueError(f"unknown scaling {config.scaling!r}; expected one of {SCALINGS}")
  return np.clip(image.astype(np.float64) * scale, 0.0, MAX_NITS).astype(np.float32)


def make_pair(path: epath.Path, name: str, config: HdrConfig):
  """(ldr uint8, hdr float32 cd/m^2, tone map: `tonemap.ToneMap`) for one HDR file."""
  hdr = to_nits(resize(read_hdr(path), config.size), config, path)
  tone_map = tonemap.choose(config.operator, name, config.seed)
  return tonemap.to_ldr(tone_map, hdr), hdr, tone_map


def _walk(folder: epath.Path):
  for path in sorted(folder.iterdir()):
    if path.name.startswith(".") or path.name == "__MACOSX":
      continue
    if path.is_dir():
      yield from _walk(path)
    elif path.suffix.lower() in HDR_EXTENSIONS:
      yield path


def _list(folder: epath.Path) -> list[tuple[str, epath.Path]]:
  """[(name, path)] of the HDR files at any depth below `folder`; the name is the relative path without
  its extension."""
  out, seen = [], {}
  for path in _walk(folder):
    name = str(path.relative_to(folder).with_suffix(""))
    if name in seen:
      raise errors.LayoutError(f"two HDR files share the name {name!r}: {seen[name]} and {path}")
    seen[name] = path
    out.append((name, path))
  return out


class Hdr(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """(LDR, HDR) pairs for inverse tone mapping from a folder of HDR images."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = RELEASE_NOTES
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Put HDR images (Radiance .hdr, OpenEXR .exr, or 16-bit linear PNG / TIFF) in the manual folder, at any
depth, either all together (a seeded 10% becomes `test`) or in MANUAL_DIR/train/ and MANUAL_DIR/test/.
iTMN's own set (2660 images) is private; public HDR collections include the Fairchild HDR Photographic
Survey ({HOMEPAGE}) and HDR-Eye.
"""

  def _info(self):
    image = lambda dtype: tfds.features.Tensor(shape=(None, None, 3), dtype=dtype, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "ldr": image(np.uint8),
            "hdr": image(np.float32),
            "name": tfds.features.Text(),
            "operator": tfds.features.Text(),
        }),
        homepage=HOMEPAGE,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    root = epath.Path(dl_manager.manual_dir)
    train, test = errors.child(root, "train"), errors.child(root, "test")
    if (train is None) != (test is None):
      raise errors.LayoutError(f"{root} has a {'train' if train else 'test'}/ folder but no "
                               f"{'test' if train else 'train'}/ folder: give both, or neither")
    if train is not None and test is not None:
      files = {"train": _list(train), "test": _list(test)}
    else:
      everything = _list(root)
      if len(everything) < 2:
        raise errors.missing_layout(
            root, f"at least two HDR images ({', '.join(HDR_EXTENSIONS)})",
            "  MANUAL_DIR/**/*.hdr (or .exr, 16-bit .png / .tif)   or   MANUAL_DIR/{train,test}/**/*.hdr",
            HOMEPAGE)
      num_test = max(1, round(config.test_fraction * len(everything)))
      chosen = set(np.random.default_rng(config.seed).choice(len(everything), num_test, replace=False).tolist())
      files = {"train": [f for i, f in enumerate(everything) if i not in chosen],
               "test": [f for i, f in enumerate(everything) if i in chosen]}
    for split, items in files.items():
      if not items:
        raise errors.missing_layout(root, f"HDR images for split {split!r}",
                                    f"  MANUAL_DIR/{split}/**/*.hdr (or .exr, 16-bit .png / .tif)", HOMEPAGE)
    return {split: self._generate_examples(split, items) for split, items in files.items()}

  def _generate_examples(self, split, items):
    config = self.builder_config
    for name, path in items:
      try:
        ldr, hdr, tone_map = make_pair(path, name, config)
      except errors.BadFileError as e:
        self.bad_files.handle(e, split)
        continue
      yield name, {"ldr": ldr, "hdr": hdr, "name": name, "operator": str(tone_map)}

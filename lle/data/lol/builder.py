"""`lol`: the LOw-Light paired data set (Wei et al. 2018, "Deep Retinex Decomposition"; LOL-v2 from Yang et
al. 2021, "Sparse Gradient Regularized Deep Retinex Network").

Configs:
  * `v1`: 485 training pairs (`our485/{low,high}`) and 15 test pairs (`eval15/{low,high}`), 400x600 PNGs,
    the same file name in `low` and `high`.
  * `v2_real`: `Real_captured/{Train,Test}/{Low,Normal}` (689 / 100 pairs); a low image `low00001.png` is
    paired with `normal00001.png` (the `low` / `normal` prefixes are matched case-insensitively).
  * `v2_synthetic`: `Synthetic/{Train,Test}/{Low,Normal}` (900 / 100 pairs), the same file name in both.

Features: `low` and `high` (the normal-light reference), uint8 RGB [H, W, 3] exactly as decoded from the
files; `name`, the low image's file name. Splits `train` and `test`.

Pairs are matched by file name (without extension); a file without its partner, paired images of different
sizes, and unreadable or truncated files stop the build with an error naming the file(s), unless the
builder is made with `skip_bad=True` (`--skip_bad`), which skips and counts them. A download with fewer
pairs than the data set has is refused unless `allow_subset=True` (`--allow_subset`).
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lle.data import errors

HOMEPAGE_V1 = "https://daooshee.github.io/BMVC2018website/"
HOMEPAGE_V2 = "https://github.com/flyywh/CVPR-2020-Semi-Low-Light"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass
class LolConfig(tfds.core.BuilderConfig):
  # split name -> (low folder, high folder), relative to the data set's root folder.
  folders: dict = dataclasses.field(default_factory=dict)
  # split name -> number of pairs in the full data set.
  expected: dict = dataclasses.field(default_factory=dict)
  # File-name prefixes of low and high images that are dropped before matching ("" = same names).
  prefixes: tuple = ("", "")
  homepage: str = HOMEPAGE_V1
  layout: str = ""


CONFIGS = (
    LolConfig(
        name="v1", description="LOL v1: our485 (train) and eval15 (test).",
        folders={"train": ("our485/low", "our485/high"), "test": ("eval15/low", "eval15/high")},
        expected={"train": 485, "test": 15},
        layout="  LOLdataset/our485/{low,high}/*.png   (485 pairs)\n  LOLdataset/eval15/{low,high}/*.png   (15)"),
    LolConfig(
        name="v2_real", description="LOL-v2 Real_captured: low00001.png <-> normal00001.png.",
        folders={"train": ("Real_captured/Train/Low", "Real_captured/Train/Normal"),
                 "test": ("Real_captured/Test/Low", "Real_captured/Test/Normal")},
        expected={"train": 689, "test": 100}, prefixes=("low", "normal"), homepage=HOMEPAGE_V2,
        layout="  LOL-v2/Real_captured/Train/{Low,Normal}/   low00001.png <-> normal00001.png (689 pairs)\n"
               "  LOL-v2/Real_captured/Test/{Low,Normal}/    (100)"),
    LolConfig(
        name="v2_synthetic", description="LOL-v2 Synthetic: the same file name in Low and Normal.",
        folders={"train": ("Synthetic/Train/Low", "Synthetic/Train/Normal"),
                 "test": ("Synthetic/Test/Low", "Synthetic/Test/Normal")},
        expected={"train": 900, "test": 100}, homepage=HOMEPAGE_V2,
        layout="  LOL-v2/Synthetic/Train/{Low,Normal}/*.png   (900 pairs)\n"
               "  LOL-v2/Synthetic/Test/{Low,Normal}/*.png    (100)"),
)


def _pair_key(path: epath.Path, prefix: str) -> str:
  stem = path.stem
  if prefix and stem.lower().startswith(prefix):
    stem = stem[len(prefix):]
  return stem


def list_pairs(low_dir: epath.Path, high_dir: epath.Path, prefixes=("", "")):
  """[(name, (low path, high path) or BadFileError)], sorted by name: every file of either folder appears
  once, a file without its partner (or two files with one key) as a `BadFileError`."""
  sides = []
  out = []
  for directory, prefix in zip((low_dir, high_dir), prefixes):
    by_key = {}
    for path in errors.list_images(directory, EXTENSIONS):
      by_key.setdefault(_pair_key(path, prefix), []).append(path)
    sides.append(by_key)
  low, high = sides
  for key in sorted(set(low) | set(high)):
    files = low.get(key, []) + high.get(key, [])
    name = (low.get(key) or high.get(key))[0].name
    if len(low.get(key, [])) > 1 or len(high.get(key, [])) > 1:
      out.append((name, errors.BadFileError(files, "several files share one pair name")))
    elif key not in high:
      out.append((name, errors.BadFileError(files, f"no partner in {high_dir}")))
    elif key not in low:
      out.append((name, errors.BadFileError(files, f"no partner in {low_dir}")))
    else:
      out.append((name, (low[key][0], high[key][0])))
  return out


def load_pair(low_path: epath.Path, high_path: epath.Path):
  """(low, high) uint8 RGB of one pair; `BadFileError` if either is unreadable or they differ in size."""
  images = [errors.decode_image(p) for p in (low_path, high_path)]
  for path, image in zip((low_path, high_path), images):
    if image.dtype != np.uint8:
      raise errors.BadFileError(path, f"expected an 8-bit image, got {image.dtype}")
  errors.check_same_size((low_path, high_path), images)
  return images


class Lol(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """LOL v1 and LOL-v2 paired low / normal-light images from a manual download."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "LOL v1, LOL-v2 Real_captured and Synthetic."}
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
LOL v1 (config `v1`): download LOLdataset.zip from {HOMEPAGE_V1} and unpack it into the manual folder:
  MANUAL_DIR/LOLdataset/our485/low/*.png, our485/high/*.png, eval15/low/*.png, eval15/high/*.png
LOL-v2 (configs `v2_real`, `v2_synthetic`): download LOL-v2 from the links at {HOMEPAGE_V2} and unpack it:
  MANUAL_DIR/LOL-v2/Real_captured/{{Train,Test}}/{{Low,Normal}}/   (low00001.png <-> normal00001.png)
  MANUAL_DIR/LOL-v2/Synthetic/{{Train,Test}}/{{Low,Normal}}/       (same file names)
The root folder's name does not matter: it is searched for up to two levels below MANUAL_DIR.
"""

  def _info(self):
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({"low": image, "high": image, "name": tfds.features.Text()}),
        homepage=self.builder_config.homepage,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    required = [f for pair in config.folders.values() for f in pair]
    root = errors.find_root(dl_manager.manual_dir, required)
    if root is None:
      raise errors.missing_layout(dl_manager.manual_dir, f"LOL {config.name} folders", config.layout,
                                  config.homepage)
    splits = {}
    for split, (low, high) in config.folders.items():
      pairs = list_pairs(errors.subpath(root, low), errors.subpath(root, high), config.prefixes)
      if not pairs:
        raise errors.LayoutError(f"no images in {errors.subpath(root, low)}; expected layout:\n{config.layout}")
      self.check_count(len(pairs), config.expected[split], f"LOL {config.name} {split} pairs")
      splits[split] = self._generate_examples(split, pairs)
    return splits

  def _generate_examples(self, split, pairs):
    for name, (low_path, high_path) in self._pairs_checked(split, pairs):
      try:
        low, high = load_pair(low_path, high_path)
      except errors.BadFileError as e:
        self.bad_files.handle(e, split)
        continue
      yield name, {"low": low, "high": high, "name": name}

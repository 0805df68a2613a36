"""`s7`: the Samsung S7 ISP data set (Schwartz et al. 2018, "DeepISP"), the first set Adlakha et al. 2021
("IQE") name: 110 scenes shot with a Galaxy S7 rear camera (12 Mpixel), each as a short exposure (the low
light) and a medium exposure (normal light), each saved as the camera's DNG raw and its JPEG. Release
layout (the `S7-ISP-Dataset/` folder of the download), one folder per scene named by its capture time:

  S7-ISP-Dataset/20161107_093217/short_exposure.jpg   short_exposure.dng
  S7-ISP-Dataset/20161107_093217/medium_exposure.jpg  medium_exposure.dng   ...

The IQE code (Leo-Adlakha/IQE `MachineLearningContent/Code/utils.py`, `load_samsung_dataset`) reads every
scene folder whose name starts with `2016`, takes its `short*.jpg` as the input and its `medium*.jpg` as the
target (RGB as decoded, no EXIF rotation), then cuts both into 100x100 tiles. Configs:
  * `short_jpg`: that pairing, `short` and `medium` uint8 [H, W, 3] (the `s7` variant of configs/iqe.py).
  * `short_raw`: the input is `short*.dng` developed by rawpy's default `postprocess()` (8-bit sRGB: the one
    way the IQE code develops a DNG, in its utils notebook); the target stays `medium*.jpg`. Needs
    `pip install rawpy`.
Features: `short`, `medium` and `name` (the scene folder's name).

Splits: the IQE code trains on every scene and keeps none apart; lle holds out the last `TEST_SCENES` scene
folders in name (capture-time) order as `test` (not in the paper or its code), the rest is `train`.

A missing folder raises `LayoutError`; a scene without exactly one short and one medium file, images of a
pair that differ in size, and unreadable files stop the build with an error naming them, unless
`skip_bad=True` (`--skip_bad`); a download with fewer than the 110 scenes is refused unless `allow_subset`.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lle.data import errors

HOMEPAGE = "https://elischwartz.github.io/DeepISP/"
NUM_SCENES = 110  # DeepISP sec. 4 and the IQE text: "A total of 110 scenes"
TEST_SCENES = 10  # lle's held-out scenes (the IQE code has no split)
SCENE_PREFIX = "2016"  # IQE utils.load_samsung_dataset: `if not folder.startswith('2016'): continue`
LAYOUT = ("  S7-ISP-Dataset/2016MMDD_HHMMSS/short_exposure.jpg (and .dng)\n"
          "  S7-ISP-Dataset/2016MMDD_HHMMSS/medium_exposure.jpg")


@dataclasses.dataclass
class S7Config(tfds.core.BuilderConfig):
  raw_input: bool = False  # develop short*.dng with rawpy instead of reading short*.jpg


CONFIGS = (S7Config(name="short_jpg", description="short -> medium exposure JPEGs, as the IQE code reads them."),
           S7Config(name="short_raw", raw_input=True,
                    description="short-exposure DNG developed by rawpy.postprocess() -> medium exposure JPEG."))


def find_scenes(manual_dir: epath.Path) -> list[epath.Path]:
  """The scene folders (names starting with 2016) of the first folder at most two levels below
  `manual_dir` that has any."""
  level = [epath.Path(manual_dir)]
  for _ in range(3):
    for directory in level:
      scenes = [d for d in errors.subdirs(directory) if d.name.startswith(SCENE_PREFIX)]
      if scenes:
        return scenes
    level = [s for d in level for s in errors.subdirs(d)]
  return []


def scene_files(scene: epath.Path, raw_input: bool):
  """(input path, target path) of a scene, or a `BadFileError` naming what is missing or doubled."""
  files = [p for p in scene.iterdir() if p.is_file() and not p.name.startswith(".")]
  wanted = (("short", ".dng" if raw_input else ".jpg"), ("medium", ".jpg"))
  found = []
  for prefix, suffix in wanted:
    matches = sorted(p for p in files if p.name.lower().startswith(prefix) and p.suffix.lower() == suffix)
    if len(matches) != 1:
      return errors.BadFileError(matches or [scene], f"expected one {prefix}*{suffix} in the scene folder, "
                                                     f"found {len(matches)}")
    found.append(matches[0])
  return tuple(found)


def dng_developer():
  """rawpy's default development (`raw.postprocess()`: 8-bit sRGB), imported only for `short_raw`."""
  return errors.rawpy_decoder("the s7/short_raw config", lambda rawpy: {})


class S7(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """Samsung S7 short / medium exposure pairs from a manual download."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Short -> medium exposure pairs (JPEG or developed DNG inputs); last 10 scenes held out."}
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the S7 ISP data set (S7-ISP-Dataset, from {HOMEPAGE}) and unpack it so that its scene folders lie
at most two levels below MANUAL_DIR:
{LAYOUT}
"""

  def _info(self):
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({"short": image, "medium": image, "name": tfds.features.Text()}),
        homepage=HOMEPAGE)

  def _split_generators(self, dl_manager):
    scenes = find_scenes(dl_manager.manual_dir)
    if not scenes:
      raise errors.missing_layout(dl_manager.manual_dir, "S7 scene folders (2016MMDD_HHMMSS/)", LAYOUT, HOMEPAGE)
    errors.check_count(len(scenes), NUM_SCENES, "S7 scenes", self.allow_subset)
    raw_input = self.builder_config.raw_input
    self._develop = dng_developer() if raw_input else errors.decode_image
    pairs = [(scene.name, scene_files(scene, raw_input)) for scene in scenes]
    held_out = min(TEST_SCENES, len(pairs) // 2)  # a subset keeps both splits non-empty
    return {"train": self._generate_examples("train", pairs[:len(pairs) - held_out]),
            "test": self._generate_examples("test", pairs[len(pairs) - held_out:])}

  def _generate_examples(self, split, pairs):
    for name, (short_path, medium_path) in self._pairs_checked(split, pairs):
      try:
        short, medium = self._develop(short_path), errors.decode_image(medium_path)
        for path, image in ((short_path, short), (medium_path, medium)):
          if image.dtype != np.uint8:
            raise errors.BadFileError(path, f"expected an 8-bit image, got {image.dtype}")
        errors.check_same_size((short_path, medium_path), (short, medium))
      except errors.BadFileError as e:
        self.bad_files.handle(e, split)
        continue
      yield name, {"short": short, "medium": medium, "name": name}

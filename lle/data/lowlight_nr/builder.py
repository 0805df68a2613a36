"""`lowlight_nr`: the real under-exposed photos that low-light papers show and score without a reference.

Configs (the sets as the papers use them):
  * `lime`: LIME-data, 10 images (Guo et al. 2017), as GLADNet sec. III-C and NEID sec. 3.1 use it.
  * `dicm`: DICM, 69 images taken with commercial cameras (Lee et al. 2012), as GLADNet sec. III-C counts.
  * `npe`: the NPE images of Wang et al. 2013 shown by NEID (Fig. 7) and GLADNet (Fig. 2), 8 images.
  * `mef`: the MEF low-light images of Ma et al. 2015 used by LIME and later work, 17 images (GLADNet
    sec. III-C instead picks 76 under-exposed frames of the 17 sequences: build that selection with
    `--allow_subset` from a folder holding them).

Feature `low`: the photo, uint8 RGB [H, W, 3] as decoded (gray images become RGB); `name`: its file name.
One split, `test`. The folder may hold the images directly or in a sub-folder named after the set
(`LIME/`, `DICM/`, ..., any case), up to two levels down. An unreadable or truncated file stops the build
with its name (`--skip_bad` skips and counts it); fewer images than the set has are refused unless
`--allow_subset`.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lle.data import errors

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass
class NrConfig(tfds.core.BuilderConfig):
  expected: int = 0
  folder: str = ""  # the set's usual folder name
  homepage: str = ""


CONFIGS = (
    NrConfig(name="lime", description="LIME-data (Guo et al. 2017).", expected=10, folder="LIME",
             homepage="https://sites.google.com/view/xjguo/lime"),
    NrConfig(name="dicm", description="DICM (Lee et al. 2012).", expected=69, folder="DICM",
             homepage="https://sites.google.com/site/vonikakis/datasets"),
    NrConfig(name="npe", description="NPE (Wang et al. 2013).", expected=8, folder="NPE",
             homepage="https://shuhangwang.wordpress.com/2015/12/14/naturalness-preserved-image-enhancement/"),
    NrConfig(name="mef", description="MEF low-light images (Ma et al. 2015).", expected=17, folder="MEF",
             homepage="https://ece.uwaterloo.ca/~k29ma/"),
)


def decode_rgb8(path: epath.Path) -> np.ndarray:
  """uint8 RGB [H, W, 3] of an image file (gray becomes RGB); `BadFileError` naming the file."""
  import cv2
  data = path.read_bytes()
  if not data:
    raise errors.BadFileError(path, "empty file")
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None:
    raise errors.BadFileError(path, "unreadable or truncated image")
  return np.ascontiguousarray(image[..., ::-1])


def find_images(manual_dir: epath.Path, folder: str) -> tuple[epath.Path, list[epath.Path]]:
  """The set's folder (named `folder`, any case, up to two levels down; else `manual_dir` itself if it
  holds images) and its image files."""
  root = errors.find_root(manual_dir, [folder])
  directory = errors.subpath(root, folder) if root is not None else epath.Path(manual_dir)
  return directory, errors.list_images(directory, EXTENSIONS)


class LowlightNr(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """Unpaired real low-light photos (no reference), scored with no-reference metrics such as NIQE."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "LIME, DICM, NPE and MEF folders."}
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = "\n".join(
      [f"{c.name}: download the {c.folder} images ({c.expected}) from {c.homepage} (or a collection of the "
       f"low-light test sets) and put them into MANUAL_DIR or MANUAL_DIR/{c.folder}/." for c in CONFIGS])

  def _info(self):
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({"low": image, "name": tfds.features.Text()}),
        homepage=self.builder_config.homepage,
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    directory, files = find_images(dl_manager.manual_dir, config.folder)
    if not files:
      raise errors.LayoutError(
          f"no {', '.join(EXTENSIONS)} images in {directory} (nor in a sub-folder {config.folder}/).\n"
          f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    self.check_count(len(files), config.expected, f"{config.folder} images")
    return {"test": self._generate_examples(files)}

  def _generate_examples(self, files):
    for path in files:
      try:
        low = decode_rgb8(path)
      except errors.BadFileError as e:
        self.bad_files.handle(e, "test")
        continue
      yield path.name, {"low": low, "name": path.name}

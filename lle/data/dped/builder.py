"""`dped`: the DSLR Photo Enhancement Dataset (Ignatov et al. 2017, "DSLR-Quality Photos on Mobile Devices
with Deep Convolutional Networks"), the phone -> DSLR patch pairs that DPED and IQE (Adlakha et al. 2021)
train on. Release layout (the `dped/` folder of the download):

  dped/<phone>/training_data/<phone>/N.jpg   100x100 phone patches      (<phone>: iphone, blackberry, sony)
  dped/<phone>/training_data/canon/N.jpg     the aligned Canon 70D patches
  dped/<phone>/test_data/patches/<phone>/N.jpg, .../canon/N.jpg           held-out patch pairs
  dped/<phone>/test_data/full_size_test_images/*.jpg                      full phone photos, no DSLR pair

Configs: `<phone>`: splits `train` (training_data) and `test` (test_data/patches), features `phone` and
`canon` (uint8 RGB as decoded) and `name` (the file name), paired by file name as DPED's
`load_dataset.py` pairs them. `<phone>_full`: split `test`, the full-size photos as feature `low` (the
feature the no-reference evaluation reads, `config.eval.no_reference = ("dped/iphone_full",)`) and `name`.

A missing folder raises `LayoutError` naming the layout; a patch without its partner, pairs of different
sizes, and unreadable or truncated JPEGs stop the build with an error naming the file(s), unless
`skip_bad=True` (`--skip_bad`) skips and counts them. The release's patch counts are not published
per phone in a form checked here, so no download is refused as partial (`allow_subset` has no effect).
"""
import dataclasses

import numpy as np

import tensorflow_datasets as tfds

from lle.data import errors
from lle.data.lol import builder as lol

HOMEPAGE = "https://people.ee.ethz.ch/~ihnatova/"
PHONES = ("iphone", "blackberry", "sony")


@dataclasses.dataclass
class DpedConfig(tfds.core.BuilderConfig):
  phone: str = "iphone"
  full_size: bool = False


CONFIGS = tuple(DpedConfig(name=f"{p}{'_full' if full else ''}", phone=p, full_size=full,
                           description=(f"DPED {p}: full-size test photos (no DSLR pair)." if full else
                                        f"DPED {p} -> Canon 100x100 patch pairs."))
                for p in PHONES for full in (False, True))


def layout(phone: str) -> str:
  return (f"  dped/{phone}/training_data/{{{phone},canon}}/N.jpg\n"
          f"  dped/{phone}/test_data/patches/{{{phone},canon}}/N.jpg\n"
          f"  dped/{phone}/test_data/full_size_test_images/*.jpg")


class Dped(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """DPED phone / DSLR patch pairs, and each phone's full-size test photos, from a manual download."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Patch pairs of iphone, blackberry, sony; full-size test photos."}
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the DPED data set (dped.zip, or the per-phone archives) from {HOMEPAGE} and unpack it so that
MANUAL_DIR holds (at most two levels down) the `<phone>/` folders:
{layout('<phone>')}
"""

  def _info(self):
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib")
    if self.builder_config.full_size:
      features = {"low": image, "name": tfds.features.Text()}
    else:
      features = {"phone": image, "canon": image, "name": tfds.features.Text()}
    return self.dataset_info_from_configs(description=__doc__, features=tfds.features.FeaturesDict(features),
                                          homepage=HOMEPAGE)

  def _split_generators(self, dl_manager):
    phone = self.builder_config.phone
    if self.builder_config.full_size:
      folder = f"{phone}/test_data/full_size_test_images"
      root = errors.find_root(dl_manager.manual_dir, [folder])
      if root is None:
        raise errors.missing_layout(dl_manager.manual_dir, f"DPED {phone} full-size test folder", layout(phone),
                                    HOMEPAGE)
      directory = errors.subpath(root, folder)
      files = errors.list_images(directory, (".jpg", ".jpeg", ".png"))
      if not files:
        raise errors.LayoutError(f"no images in {directory}; expected layout:\n{layout(phone)}")
      return {"test": self._generate_examples("test", files)}
    folders = {"train": (f"{phone}/training_data/{phone}", f"{phone}/training_data/canon"),
               "test": (f"{phone}/test_data/patches/{phone}", f"{phone}/test_data/patches/canon")}
    root = errors.find_root(dl_manager.manual_dir, [f for pair in folders.values() for f in pair])
    if root is None:
      raise errors.missing_layout(dl_manager.manual_dir, f"DPED {phone} folders", layout(phone), HOMEPAGE)
    splits = {}
    for split, (phone_dir, canon_dir) in folders.items():
      pairs = lol.list_pairs(errors.subpath(root, phone_dir), errors.subpath(root, canon_dir))
      if not pairs:
        raise errors.LayoutError(f"no images in {errors.subpath(root, phone_dir)}; expected layout:\n{layout(phone)}")
      splits[split] = self._generate_examples(split, pairs)
    return splits

  def _generate_examples(self, split, items):
    """`items`: (name, paths) pairs of patches, or the full-size photos' paths (`<phone>_full`)."""
    if self.builder_config.full_size:
      yield from self._generate_photos(items)
      return
    pairs = items
    for name, (phone_path, canon_path) in self._pairs_checked(split, pairs):
      try:
        phone, canon = lol.load_pair(phone_path, canon_path)
      except errors.BadFileError as e:
        self.bad_files.handle(e, split)
        continue
      yield name, {"phone": phone, "canon": canon, "name": name}

  def _generate_photos(self, files):
    for path in files:
      try:
        image = errors.decode_image(path)
      except errors.BadFileError as e:
        self.bad_files.handle(e, "test")
        continue
      yield path.name, {"low": image, "name": path.name}

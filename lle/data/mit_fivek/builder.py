"""`mit_fivek`: MIT-Adobe FiveK (Bychkovsky et al. 2011), 5000 photos each retouched by five experts A-E.

Configs are named `expert_<e>[_raw][_<split>]`:
  * `<e>` in a-e picks the target expert (expert C is the literature's usual target; `expert_c` is the
    default config).
  * without `_raw`, the exported layout: an input folder (`input/`) and one folder per expert (`expertC/`,
    `ExpertC/`, `expert_c/`, ...) of JPEG / PNG / TIFF files, matched by the image id `aNNNN` that starts
    each file name (`a0001.jpg`, `a0001-jmac_DSC1459.tif`). `input` and `target` are stored as uint8
    (a 16-bit file is reduced to 8 bits by round(x / 257)).
  * with `_raw`, the original download: DNG raws `raw_photos/HQa*/photos/aNNNN-*.dng`, decoded with
    `rawpy` (camera white balance, no auto-brightening, sRGB primaries and rawpy's default BT.709 gamma,
    16 bits), beside expert TIFFs exported at full size (`expertC/aNNNN-*.tif`, 16-bit). `input` and
    `target` are stored as uint16 (an 8-bit TIFF is widened exactly by x * 257). Needs `pip install rawpy`.
  * `<split>`: none = `standard` (a0001-a4500 train, a4501-a5000 test); `montulet` (442 seeded random
    test images, see `splits.py`). Your own split: `custom_config(split_file)` or `python -m
    lle.data.build mit_fivek/expert_c --split_file=FILE`, which names the config
    `expert_c[_raw]_split_<file stem>`.

Features: `input`, `target` [H, W, 3] (uint8, or uint16 for `_raw`), `id` (`a0001`); `name`, the same
text as `id` (the feature the pipelines name per-image results by).

Images of a pair must have the same size: expert exports that are cropped or resized differently from
their input are reported (never resized here). A download with fewer images than a split lists is refused
unless `allow_subset=True` (`--allow_subset`); a file without its partner, a size mismatch or an
unreadable file stops the build unless `skip_bad=True` (`--skip_bad`).
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from lle.data import errors
from lle.data.mit_fivek import splits as splits_lib

HOMEPAGE = "https://data.csail.mit.edu/graphics/fivek/"
EXPERTS = ("a", "b", "c", "d", "e")
EXPORT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
INPUT_FOLDERS = ("input", "inputs", "original", "originals")


@dataclasses.dataclass
class MitFivekConfig(tfds.core.BuilderConfig):
  expert: str = "c"
  raw: bool = False  # DNG + 16-bit TIFF layout
  scheme: str = "standard"  # `standard`, `montulet`, or `file`
  split_file: str | None = None  # with scheme `file`


def _config(expert, raw, scheme):
  name = f"expert_{expert}" + ("_raw" if raw else "") + ("" if scheme == "standard" else f"_{scheme}")
  layout = "DNG raws + 16-bit expert TIFFs" if raw else "exported JPEG/PNG/TIFF folders"
  return MitFivekConfig(name=name, expert=expert, raw=raw, scheme=scheme,
                        description=f"Expert {expert.upper()} target, {layout}, {scheme} split.")


# expert_c first: the default config.
CONFIGS = tuple(_config(e, raw, s) for raw in (False, True) for e in sorted(EXPERTS, key=lambda x: x != "c")
                for s in splits_lib.SCHEMES)


def custom_config(split_file, *, expert: str = "c", raw: bool = False, name: str | None = None):
  """A config whose splits come from `split_file` (see `splits.read_split_file`), named
  `expert_<e>[_raw]_split_<name or the file's stem>`."""
  if expert not in EXPERTS:
    raise ValueError(f"unknown FiveK expert {expert!r}; expected one of {EXPERTS}")
  splits_lib.read_split_file(split_file)  # fail now, not mid-build
  stem = name or epath.Path(split_file).stem
  stem = "".join(c if c.isalnum() else "_" for c in stem.lower())
  base = f"expert_{expert}" + ("_raw" if raw else "")
  return MitFivekConfig(name=f"{base}_split_{stem}", expert=expert, raw=raw, scheme="file",
                        split_file=str(split_file),
                        description=f"Expert {expert.upper()} target, splits from {split_file}.")


def _norm(name: str) -> str:
  return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def find_folders(manual_dir: epath.Path, expert: str, raw: bool):
  """(input folder, expert folder) at most two levels below `manual_dir`; None if not found. The input
  folder is `raw_photos/` for the DNG layout."""
  wanted_input = ("rawphotos",) if raw else INPUT_FOLDERS
  level = [epath.Path(manual_dir)]
  for _ in range(3):
    for directory in level:
      kids = errors.subdirs(directory)
      inputs = [k for k in kids if _norm(k.name) in wanted_input]
      experts = [k for k in kids if _norm(k.name) == f"expert{expert}"]
      if inputs and experts:
        return inputs[0], experts[0]
    level = [s for d in level for s in errors.subdirs(d)]
  return None


def _index(files, where) -> dict[str, list[epath.Path]]:
  by_id = {}
  for path in files:
    image = splits_lib.parse_id(path.name)
    if image is None:
      logging.warning("ignoring %s in %s: its name does not start with a FiveK id aNNNN", path.name, where)
      continue
    by_id.setdefault(image, []).append(path)
  return by_id


def list_inputs(folder: epath.Path, raw: bool) -> dict[str, list[epath.Path]]:
  if not raw:
    return _index(errors.list_images(folder, EXPORT_EXTENSIONS), folder)
  files = []
  for part in errors.subdirs(folder):  # HQa1to700, HQa701to1400, ...
    photos = errors.child(part, "photos") or part
    files += errors.list_images(photos, (".dng",))
  return _index(files, folder)


def dng_decoder():
  """The DNG decoder: rawpy (camera white balance, no auto-brightening, 16 bits, sRGB primaries), imported
  only when the raw layout is used."""
  return errors.rawpy_decoder("the FiveK DNG layout (configs `expert_*_raw*`)", lambda rawpy: dict(
      use_camera_wb=True, no_auto_bright=True, output_bps=16, output_color=rawpy.ColorSpace.sRGB))


def _to_dtype(image: np.ndarray, dtype) -> np.ndarray:
  if image.dtype == dtype:
    return image
  if image.dtype == np.uint16 and dtype == np.uint8:
    return np.round(image / 257.0).astype(np.uint8)
  if image.dtype == np.uint8 and dtype == np.uint16:
    return image.astype(np.uint16) * 257
  raise ValueError(f"cannot store a {image.dtype} image as {np.dtype(dtype)}")


class MitFivek(errors.StrictBuilderMixin, tfds.core.GeneratorBasedBuilder):
  """MIT-Adobe FiveK input / expert pairs from a manual download."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Experts A-E; exported and DNG layouts; standard, Montulet and file splits."}
  BUILDER_CONFIGS = list(CONFIGS)
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
MIT-Adobe FiveK, from {HOMEPAGE}. Either layout, with its root folder at most two levels below MANUAL_DIR:
  exported (configs expert_<e>, expert_<e>_montulet):
    MANUAL_DIR/.../input/a0001*.jpg|png|tif     and   MANUAL_DIR/.../expertC/a0001*.jpg|png|tif
  original DNGs (configs expert_<e>_raw...; needs `pip install rawpy`):
    MANUAL_DIR/fivek_dataset/raw_photos/HQa1to700/photos/a0001-jmac_DSC1459.dng ...
    MANUAL_DIR/fivek_dataset/expertC/a0001-jmac_DSC1459.tif   (16-bit TIFFs exported at full size)
Files are matched by the id aNNNN that starts their names; the expert folder may be spelled expertC,
ExpertC or expert_c.
"""

  def _info(self):
    dtype = np.uint16 if self.builder_config.raw else np.uint8
    image = tfds.features.Tensor(shape=(None, None, 3), dtype=dtype, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "input": image, "target": image, "id": tfds.features.Text(), "name": tfds.features.Text()}),
        homepage=HOMEPAGE,
    )

  def _splits(self) -> dict[str, list[str]]:
    config = self.builder_config
    if config.scheme == "file":
      if not config.split_file:
        raise ValueError(f"config {config.name!r} needs a split file")
      return splits_lib.read_split_file(config.split_file)
    return splits_lib.scheme_split(config.scheme)

  def _split_generators(self, dl_manager):
    config = self.builder_config
    split_ids = self._splits()
    folders = find_folders(dl_manager.manual_dir, config.expert, config.raw)
    if folders is None:
      layout = ("  .../raw_photos/HQa*/photos/aNNNN-*.dng  and  .../expert" + config.expert.upper() +
                "/aNNNN-*.tif  (side by side)") if config.raw else (
                    "  .../input/aNNNN*.jpg  and  .../expert" + config.expert.upper() + "/aNNNN*.jpg  (side by side)")
      raise errors.missing_layout(dl_manager.manual_dir, f"FiveK folders for config {config.name!r}", layout,
                                  HOMEPAGE)
    input_dir, expert_dir = folders
    self._decode_dng = dng_decoder() if config.raw else None
    inputs = list_inputs(input_dir, config.raw)
    targets = _index(errors.list_images(expert_dir, EXPORT_EXTENSIONS), expert_dir)
    listed = {i for ids in split_ids.values() for i in ids}
    unused = sorted((set(inputs) | set(targets)) - listed)
    if unused:
      logging.warning("%d image ids are in no split (e.g. %s)", len(unused), unused[:3])
    out = {}
    for split, ids in split_ids.items():
      pairs = []
      for image in ids:
        ins, tgts = inputs.get(image, []), targets.get(image, [])
        if not ins and not tgts:
          continue
        if len(ins) > 1 or len(tgts) > 1:
          pairs.append((image, errors.BadFileError(ins + tgts, f"several files carry the id {image}")))
        elif not tgts:
          pairs.append((image, errors.BadFileError(ins, f"no partner in {expert_dir}")))
        elif not ins:
          pairs.append((image, errors.BadFileError(tgts, f"no partner in {input_dir}")))
        else:
          pairs.append((image, (ins[0], tgts[0])))
      self.check_count(len(pairs), len(ids), f"FiveK images of split {split!r}")
      if not pairs:
        raise errors.LayoutError(f"no FiveK images of split {split!r} in {input_dir}")
      out[split] = self._generate_examples(split, pairs)
    return out

  def _load(self, input_path, target_path):
    dtype = np.uint16 if self.builder_config.raw else np.uint8
    source = self._decode_dng(input_path) if self.builder_config.raw else errors.decode_image(input_path)
    target = errors.decode_image(target_path)
    images = [_to_dtype(im, dtype) for im in (source, target)]
    errors.check_same_size((input_path, target_path), images)
    return images

  def _generate_examples(self, split, pairs):
    for image, (input_path, target_path) in self._pairs_checked(split, pairs):
      try:
        source, target = self._load(input_path, target_path)
      except errors.BadFileError as e:
        self.bad_files.handle(e, split)
        continue
      yield image, {"input": source, "target": target, "id": image, "name": image}


"""Shared checks for the builders of user-supplied data sets: layout search, strict image reading, and the
bookkeeping of `--skip_bad`.

Bad input never yields a silently wrong data set: a missing folder raises `LayoutError` (naming the expected
layout and the download page); a file without its partner, paired images of different sizes, or an
unreadable or truncated image raises `BadFileError` naming the file(s). Only a builder made with
`skip_bad=True` (`python -m lle.data.build ... --skip_bad`) skips such examples instead, and counts them in
`BadFiles.summary()`, which the build prints at the end.
"""
import dataclasses
import os
from typing import Iterable, Sequence

import numpy as np
from absl import logging
from etils import epath

# Folders that archives carry but that never hold data.
_IGNORED_DIRS = ("__MACOSX",)


class LayoutError(FileNotFoundError):
  """The manual folder does not have the expected layout."""


class BadFileError(ValueError):
  """One example's file(s) cannot be used; `paths` names them."""

  def __init__(self, paths: Sequence[epath.PathLike] | epath.PathLike, reason: str):
    self.paths = tuple(str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths))
    self.reason = reason
    super().__init__(f"{reason}: {', '.join(self.paths)}")


@dataclasses.dataclass
class BadFiles:
  """Raises bad-input errors, or (with `skip=True`) records them as skipped."""
  skip: bool = False
  skipped: list = dataclasses.field(default_factory=list)  # (split, BadFileError)

  def handle(self, error: BadFileError, split: str) -> None:
    if not self.skip:
      raise error
    logging.warning("skipping a bad example of split %r: %s", split, error)
    self.skipped.append((split, error))

  def summary(self) -> str:
    if not self.skipped:
      return "skipped 0 bad examples"
    lines = [f"skipped {len(self.skipped)} bad example(s):"]
    lines += [f"  [{split}] {error}" for split, error in self.skipped]
    return "\n".join(lines)


def child(directory: epath.Path, name: str) -> epath.Path | None:
  """The sub-folder of `directory` called `name`, compared case-insensitively; None if absent."""
  exact = directory / name
  if exact.is_dir():
    return exact
  if not directory.is_dir():
    return None
  matches = sorted(p for p in directory.iterdir() if p.is_dir() and p.name.lower() == name.lower())
  return matches[0] if matches else None


def subpath(directory: epath.Path, relative: str) -> epath.Path | None:
  """`directory / relative` (a/b/c), each component compared case-insensitively; None if absent."""
  for part in relative.split("/"):
    directory = child(directory, part)
    if directory is None:
      return None
  return directory


def subdirs(directory: epath.Path) -> list[epath.Path]:
  return sorted(p for p in directory.iterdir()
                if p.is_dir() and not p.name.startswith(".") and p.name not in _IGNORED_DIRS)


def find_root(manual_dir: epath.Path, required: Iterable[str], *, depth: int = 2) -> epath.Path | None:
  """The first folder at most `depth` levels below `manual_dir` (breadth first, sorted) that has every
  `required` relative sub-folder: archives unpack into root folders of varying names (`LOLdataset/`,
  `LOL-v2/`, ...)."""
  required = tuple(required)
  level = [epath.Path(manual_dir)]
  for _ in range(depth + 1):
    for directory in level:
      if all(subpath(directory, r) is not None for r in required):
        return directory
    level = [s for d in level for s in subdirs(d)]
  return None


def missing_layout(manual_dir, what: str, layout: str, homepage: str) -> LayoutError:
  return LayoutError(
      f"{what} not found in {manual_dir} (searched up to two levels down). Expected layout:\n{layout}\n"
      f"Download it from {homepage} and unpack it into the manual folder.")


def list_images(directory: epath.Path, extensions: Sequence[str]) -> list[epath.Path]:
  """Files of `directory` whose suffix is one of `extensions` (lower case, with the dot), sorted."""
  return sorted(p for p in directory.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)


def decode_image(path: epath.Path, *, hdr: bool = False) -> np.ndarray:
  """Reads an image file into RGB [H, W, 3] (uint8, uint16 or float32 as stored); `BadFileError` if the file
  is unreadable, truncated or not a colour image. An alpha channel is dropped. `hdr=True` decodes with
  `cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR` (Radiance .hdr as float32)."""
  import cv2
  try:
    data = path.read_bytes()
  except OSError as e:
    raise BadFileError(path, f"cannot read file ({e})") from e
  if not data:
    raise BadFileError(path, "empty file")
  flags = (cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) if hdr else cv2.IMREAD_UNCHANGED
  image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
  if image is None:
    raise BadFileError(path, "unreadable or truncated image")
  if image.ndim != 3 or image.shape[-1] not in (3, 4):
    raise BadFileError(path, f"expected a colour (RGB) image, got shape {image.shape}")
  return np.ascontiguousarray(image[..., 2::-1])  # BGR(A) -> RGB


def rawpy_decoder(needed_by: str, options):
  """path -> the raw file developed by rawpy's `postprocess(**options(rawpy))`; rawpy is imported only here,
  and its absence raises an ImportError that says `needed_by` needs it and how to install it."""
  try:
    import rawpy
  except ImportError as e:
    raise ImportError(f"{needed_by} decodes raws with rawpy, which is not installed: run `pip install rawpy`") from e
  import io
  kwargs = options(rawpy)

  def decode(path: epath.Path) -> np.ndarray:
    try:
      with rawpy.imread(io.BytesIO(path.read_bytes())) as raw:
        return raw.postprocess(**kwargs)
    except (rawpy.LibRawError, OSError, ValueError) as e:
      raise BadFileError(path, f"unreadable or truncated DNG ({e})") from e

  return decode


def check_same_size(paths: Sequence[epath.Path], images: Sequence[np.ndarray]) -> None:
  shapes = [im.shape[:2] for im in images]
  if len(set(shapes)) > 1:
    sizes = ", ".join(f"{h}x{w}" for h, w in shapes)
    raise BadFileError(paths, f"paired images differ in size ({sizes})")


def check_count(found: int, expected: int, what: str, allow_subset: bool) -> None:
  """A partial download must not build into a data set that reads as the full one."""
  if found < expected and not allow_subset:
    raise LayoutError(
        f"found {found} of the {expected} {what}: the download looks incomplete. Build from a subset only "
        f"on purpose, with --allow_subset (builder argument allow_subset=True).")


def partial_build(info) -> dict:
  """What a built data set lacks, as its dataset info records it (`metadata.json`, key "partial"):
  {"skipped": [bad files skipped by --skip_bad], "subset": ["<what>: <found> of <expected>"]}; {} for a
  complete build (or one made before lle recorded this)."""
  metadata = getattr(info, "metadata", None)
  try:
    return dict(metadata["partial"]) if metadata is not None and "partial" in metadata.keys() else {}
  except (KeyError, TypeError, ValueError, OSError):
    return {}


def describe_partial(partial: dict) -> str:
  parts = []
  if partial.get("skipped"):
    parts.append(f"built with --skip_bad, {len(partial['skipped'])} bad example(s) left out")
  if partial.get("subset"):
    parts.append(f"built with --allow_subset from a partial download ({'; '.join(partial['subset'])})")
  return "; ".join(parts)


class ArrayRecordByDefault:
  """Builder mixin: `array_record` files (random access, no TensorFlow: what lle reads) unless a
  `file_format` is given, also when a data set is built through `tfds.builder(NAME)` alone, where TFDS's
  own default, TFRecord, needs TensorFlow to write."""

  def __init__(self, *, file_format="array_record", **kwargs):
    super().__init__(file_format=file_format, **kwargs)


class StrictBuilderMixin(ArrayRecordByDefault):
  """Builder arguments shared by the builders of user-supplied data:

  skip_bad: skip (and count) bad examples instead of stopping at the first one.
  allow_subset: build from a partial download (fewer images than the data set has).
  file_format: `array_record` by default (ArrayRecordByDefault).

  A build that skipped examples or used a subset says so in its dataset info (`partial_build`).
  """

  def __init__(self, *, skip_bad: bool = False, allow_subset: bool = False, **kwargs):
    self.bad_files = BadFiles(skip=skip_bad)
    self.allow_subset = allow_subset
    self.subsets = []  # "<what>: <found> of <expected>" of each short count allowed by allow_subset
    super().__init__(**kwargs)

  def check_count(self, found: int, expected: int, what: str) -> None:
    """`check_count` with this builder's allow_subset, recording a subset it allows."""
    check_count(found, expected, what, self.allow_subset)
    if found < expected:
      self.subsets.append(f"{what}: {found} of {expected}")

  def dataset_info_from_configs(self, **kwargs):
    import tensorflow_datasets as tfds
    kwargs.setdefault("metadata", tfds.core.MetadataDict())
    return super().dataset_info_from_configs(**kwargs)

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager=dl_manager, download_config=download_config)
    # Written with the dataset info, after every split.
    self.info.metadata["partial"] = {"skipped": [", ".join(e.paths) for _, e in self.bad_files.skipped],
                                     "subset": list(self.subsets)}

  def _pairs_checked(self, split, pairs):
    """Yields the (key, paths) of `pairs` (key -> tuple of paths or a BadFileError) that are usable."""
    for key, item in pairs:
      if isinstance(item, BadFileError):
        self.bad_files.handle(item, split)
      else:
        yield key, item

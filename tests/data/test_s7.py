"""`s7`: built from small JPEGs (and stand-in DNGs) written here in the S7 ISP release layout, paired as the
IQE code pairs them; bad input names the file or folder."""
import sys

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle.data import build, errors
from lle.data.s7 import builder as s7


def _jpeg(path, seed, size=(18, 24)):
  path.parent.mkdir(parents=True, exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
  assert cv2.imwrite(str(path), image[..., ::-1])
  return cv2.imread(str(path))[..., ::-1]  # what a decoder reads back (JPEG is lossy)


def _release(root, scenes=4):
  """S7-ISP-Dataset/2016MMDD_HHMMSS/{short,medium}_exposure.{jpg,dng} per scene, plus a folder the IQE loader
  skips (its name does not start with 2016)."""
  expected = {}
  for i in range(scenes):
    scene = root / "S7-ISP-Dataset" / f"2016110{i}_1200{i:02d}"
    short = _jpeg(scene / "short_exposure.jpg", seed=i)
    medium = _jpeg(scene / "medium_exposure.jpg", seed=100 + i)
    raw = np.random.default_rng(50 + i).integers(0, 256, (18, 24, 3), dtype=np.uint8)
    assert cv2.imwrite(str(scene / "short_raw.png"), raw[..., ::-1])  # stand-in "DNG": a PNG under the .dng name
    (scene / "short_raw.png").rename(scene / "short_exposure.dng")
    expected[scene.name] = (short, medium, raw)
  _jpeg(root / "S7-ISP-Dataset" / "thumbnails" / "short_exposure.jpg", seed=7)
  return expected


def _read(data_dir, name, split):
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_short_to_medium_pairs_with_the_last_scenes_held_out(tmp_path):
  expected = _release(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  with pytest.raises(errors.LayoutError, match="found 4 of the 110 S7 scenes"):
    build.build("s7", tmp_path / "manual", data_dir=data_dir)
  builder = build.build("s7", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  assert builder.builder_config.name == "short_jpg"
  names = sorted(expected)
  train, test = _read(data_dir, "s7/short_jpg", "train"), _read(data_dir, "s7/short_jpg", "test")
  assert sorted(train) == names[:2] and sorted(test) == names[2:]  # a subset: half held out, in name order
  for name, (short, medium, _) in expected.items():
    example = (train | test)[name]
    np.testing.assert_array_equal(example["short"], short)
    np.testing.assert_array_equal(example["medium"], medium)


def test_raw_inputs_are_developed_dngs(tmp_path, monkeypatch):
  expected = _release(tmp_path / "manual")
  monkeypatch.setattr(s7, "dng_developer", lambda: errors.decode_image)  # rawpy is not a dependency
  data_dir = str(tmp_path / "tfds")
  build.build("s7/short_raw", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  examples = _read(data_dir, "s7/short_raw", "train") | _read(data_dir, "s7/short_raw", "test")
  for name, (_, medium, raw) in expected.items():
    np.testing.assert_array_equal(examples[name]["short"], raw)
    np.testing.assert_array_equal(examples[name]["medium"], medium)


def test_raw_config_without_rawpy_says_how_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "rawpy", None)
  _release(tmp_path / "manual")
  with pytest.raises(ImportError, match="pip install rawpy"):
    build.build("s7/short_raw", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)


def test_bad_scenes_name_their_files(tmp_path):
  _release(tmp_path / "manual")
  scene = tmp_path / "manual" / "S7-ISP-Dataset" / "20161101_120001"
  _jpeg(scene / "medium_exposure_2.jpg", seed=9)
  with pytest.raises(errors.BadFileError, match=r"expected one medium\*.jpg in the scene folder, found 2"):
    build.build("s7", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  builder = build.build("s7", tmp_path / "manual", data_dir=str(tmp_path / "tfds2"), allow_subset=True, skip_bad=True)
  assert builder.info.splits["train"].num_examples == 1 and "skipped 1 bad example" in builder.bad_files.summary()
  with pytest.raises(errors.LayoutError, match="S7 scene folders"):
    build.build("s7", tmp_path / "manual" / "S7-ISP-Dataset" / "thumbnails", data_dir=str(tmp_path / "tfds3"))

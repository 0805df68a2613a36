import json
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle.data import build, errors
from lle.data.mit_fivek import builder as fivek
from lle.data.mit_fivek import splits
from tests.data import fixtures

TRAIN_IDS, TEST_IDS = (1, 2, 3), (4501, 4502)


def _read(data_dir, name, split):
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  return {source[i]["id"].decode(): source[i] for i in range(len(source))}


def test_standard_split_is_4500_500():
  s = splits.standard_split()
  assert len(s["train"]) == 4500 and len(s["test"]) == 500
  assert s["train"][0] == "a0001" and s["train"][-1] == "a4500" and s["test"][0] == "a4501"
  assert s["test"][-1] == "a5000"


def test_montulet_split_is_442_seeded_and_deterministic():
  a, b = splits.montulet_split(), splits.montulet_split()
  assert a == b
  assert len(a["test"]) == 442 and len(a["train"]) == 4558
  assert not set(a["test"]) & set(a["train"])
  assert set(a["test"]) | set(a["train"]) == set(splits.standard_split()["train"] + splits.standard_split()["test"])
  assert a["test"][:3] == ["a0025", "a0026", "a0034"]  # pinned: a change of seed or method shows here
  assert splits.montulet_split(seed=1)["test"] != a["test"]
  assert len([i for i in a["test"] if i > "a4500"]) < 442  # spread over the whole range
  assert len([i for i in a["test"] if i <= "a2500"]) > 150


def test_parse_id():
  assert splits.parse_id("a0001-jmac_DSC1459.tif") == "a0001"
  assert splits.parse_id("a4999.jpg") == "a4999"
  assert splits.parse_id(17) == "a0017"
  assert splits.parse_id("a5001.jpg") is None and splits.parse_id("a00012.jpg") is None
  assert splits.parse_id("readme.txt") is None


def test_split_files(tmp_path):
  (tmp_path / "s.json").write_text(json.dumps({"train": ["a0003", 1], "val": ["a0002"]}))
  assert splits.read_split_file(tmp_path / "s.json") == {"train": ["a0001", "a0003"], "val": ["a0002"]}
  (tmp_path / "s.txt").write_text("# split id\ntrain a0001\ntest a0002-x.tif\n\ntrain 3\n")
  assert splits.read_split_file(tmp_path / "s.txt") == {"train": ["a0001", "a0003"], "test": ["a0002"]}
  (tmp_path / "dup.json").write_text(json.dumps({"train": ["a0001"], "test": ["a0001"]}))
  with pytest.raises(ValueError, match="a0001 is in both 'train' and 'test'"):
    splits.read_split_file(tmp_path / "dup.json")
  (tmp_path / "bad.txt").write_text("train a9999\n")
  with pytest.raises(ValueError, match="'a9999' in split 'train' is not a FiveK id"):
    splits.read_split_file(tmp_path / "bad.txt")


def _exported(manual, ids=TRAIN_IDS + TEST_IDS):
  """fivek/input/aNNNN-name.png, fivek/ExpertC/aNNNN.tif (8-bit), fivek/expert_a/aNNNN.png."""
  out = {}
  for i in ids:
    image_id = f"a{i:04d}"
    inp, c, a = fixtures.image(i), fixtures.image(10000 + i), fixtures.image(20000 + i)
    fixtures.write(manual / "fivek" / "input" / f"{image_id}-jmac_DSC{i}.png", inp)
    fixtures.write(manual / "fivek" / "ExpertC" / f"{image_id}.tif", c)
    fixtures.write(manual / "fivek" / "expert_a" / f"{image_id}.png", a)
    out[image_id] = {"input": inp, "c": c, "a": a}
  return out


@pytest.mark.parametrize("config,expert", [("mit_fivek", "c"), ("mit_fivek/expert_a", "a")])
def test_exported_layout_pairs_by_id(tmp_path, config, expert):
  expected = _exported(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  builder = build.build(config, tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  assert builder.builder_config.name == f"expert_{expert}"
  assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {"train": 3, "test": 2}
  name = f"mit_fivek/expert_{expert}"
  for split, ids in (("train", TRAIN_IDS), ("test", TEST_IDS)):
    examples = _read(data_dir, name, split)
    assert set(examples) == {f"a{i:04d}" for i in ids}
    for image_id, ex in examples.items():
      assert ex["input"].dtype == np.uint8 and ex["target"].dtype == np.uint8
      assert ex["name"].decode() == image_id
      np.testing.assert_array_equal(ex["input"], expected[image_id]["input"])
      np.testing.assert_array_equal(ex["target"], expected[image_id][expert])


def test_montulet_config_puts_ids_in_its_test_split(tmp_path):
  test_ids = [int(i[1:]) for i in splits.montulet_split()["test"][:2]]
  _exported(tmp_path / "manual", ids=(1, 2) + tuple(test_ids))
  builder = build.build("mit_fivek/expert_c_montulet", tmp_path / "manual", data_dir=str(tmp_path / "tfds"),
                        allow_subset=True)
  assert builder.info.splits["test"].num_examples == 2 and builder.info.splits["train"].num_examples == 2


def test_split_file_config_reads_back_by_name(tmp_path):
  _exported(tmp_path / "manual")
  split_file = tmp_path / "mysplit.json"
  split_file.write_text(json.dumps({"train": ["a0001", "a0002"], "val": ["a0003"], "test": ["a4501"]}))
  data_dir = str(tmp_path / "tfds")
  builder = build.build("mit_fivek", tmp_path / "manual", data_dir=data_dir, split_file=split_file)
  assert builder.builder_config.name == "expert_c_split_mysplit"
  assert set(_read(data_dir, "mit_fivek/expert_c_split_mysplit", "val")) == {"a0003"}
  assert len(tfds.data_source("mit_fivek/expert_c_split_mysplit", split="train", data_dir=data_dir)) == 2


def test_split_file_listing_absent_ids_is_refused(tmp_path):
  _exported(tmp_path / "manual")
  split_file = tmp_path / "s.txt"
  split_file.write_text("train a0001\ntrain a0009\ntest a4501\n")
  with pytest.raises(errors.LayoutError, match="found 1 of the 2 FiveK images of split 'train'"):
    build.build("mit_fivek", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), split_file=split_file)


def test_missing_folder_names_layout(tmp_path):
  _exported(tmp_path / "manual")
  with pytest.raises(errors.LayoutError, match=r"(?s)expertB.*data.csail.mit.edu/graphics/fivek"):
    build.build("mit_fivek/expert_b", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)


def test_missing_partner_and_size_mismatch(tmp_path):
  _exported(tmp_path / "manual")
  (tmp_path / "manual" / "fivek" / "ExpertC" / "a0002.tif").unlink()
  with pytest.raises(errors.BadFileError, match=r"no partner in .*ExpertC: .*input/a0002-jmac_DSC2\.png"):
    build.build("mit_fivek", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  fixtures.write(tmp_path / "manual" / "fivek" / "ExpertC" / "a0002.tif", fixtures.image(0, h=12, w=8))
  with pytest.raises(errors.BadFileError, match=r"differ in size \(8x12, 12x8\)"):
    build.build("mit_fivek", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  builder = build.build("mit_fivek", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True,
                        skip_bad=True)
  assert builder.info.splits["train"].num_examples == 2 and len(builder.bad_files.skipped) == 1


def _raw_layout(manual):
  """fivek_dataset/raw_photos/HQa1to700/photos/aNNNN-x.dng + fivek_dataset/expertC/aNNNN-x.tif (16-bit)."""
  out = {}
  for i in TRAIN_IDS + TEST_IDS:
    stem = f"a{i:04d}-jmac_DSC{i}"
    raw = fixtures.image(i, dtype=np.uint16)
    target = fixtures.image(30000 + i, dtype=np.uint16)
    folder = "HQa1to700" if i <= 700 else "HQa4201to5000"
    # Stand-in "DNG": a 16-bit PNG under the .dng name, decoded by the fake decoder below.
    fixtures.write(manual / "fivek_dataset" / "raw_photos" / folder / "photos" / f"{stem}.png", raw)
    (manual / "fivek_dataset" / "raw_photos" / folder / "photos" / f"{stem}.png").rename(
        manual / "fivek_dataset" / "raw_photos" / folder / "photos" / f"{stem}.dng")
    fixtures.write(manual / "fivek_dataset" / "expertC" / f"{stem}.tif", target)
    out[f"a{i:04d}"] = (raw, target)
  return out


def test_raw_layout_stores_uint16(tmp_path, monkeypatch):
  expected = _raw_layout(tmp_path / "manual")
  monkeypatch.setattr(fivek, "dng_decoder", lambda: errors.decode_image)
  data_dir = str(tmp_path / "tfds")
  builder = build.build("mit_fivek/expert_c_raw", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  assert builder.info.splits["train"].num_examples == 3
  for image_id, ex in _read(data_dir, "mit_fivek/expert_c_raw", "test").items():
    assert ex["input"].dtype == np.uint16 and ex["target"].dtype == np.uint16
    np.testing.assert_array_equal(ex["input"], expected[image_id][0])
    np.testing.assert_array_equal(ex["target"], expected[image_id][1])


def test_raw_layout_without_rawpy_says_how_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "rawpy", None)  # `import rawpy` fails, as on an install without it
  _raw_layout(tmp_path / "manual")
  with pytest.raises(ImportError, match="pip install rawpy"):
    build.build("mit_fivek/expert_c_raw", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)


def test_bit_depth_conversions_are_exact_or_rounded():
  x8 = np.array([0, 1, 128, 255], np.uint8)
  np.testing.assert_array_equal(fivek._to_dtype(x8, np.uint16), [0, 257, 32896, 65535])
  np.testing.assert_array_equal(fivek._to_dtype(fivek._to_dtype(x8, np.uint16), np.uint8), x8)
  np.testing.assert_array_equal(fivek._to_dtype(np.array([128, 129, 65535], np.uint16), np.uint8), [0, 1, 255])

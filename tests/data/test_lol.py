import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle.data import build, errors
from tests.data import fixtures


def _read(data_dir, name, split):
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def _check_pairs(examples, expected):
  assert set(examples) == set(expected)
  for name, (low, high) in expected.items():
    ex = examples[name]
    assert ex["low"].dtype == np.uint8 and ex["high"].dtype == np.uint8
    assert ex["low"].shape == (fixtures.H, fixtures.W, 3)
    np.testing.assert_array_equal(ex["low"], low)
    np.testing.assert_array_equal(ex["high"], high)


def test_v1_pairs_by_file_name(tmp_path):
  expected = fixtures.lol_v1(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  builder = build.build("lol/v1", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {"train": 3, "test": 2}
  for split in ("train", "test"):
    _check_pairs(_read(data_dir, "lol/v1", split), expected[split])


@pytest.mark.parametrize("config,part,root", [("v2_real", "Real_captured", "LOL-v2"),
                                              ("v2_synthetic", "Synthetic", "LOL_v2/unpacked")])
def test_v2_pairs(tmp_path, config, part, root):
  expected = {"train": {}, "test": {}}
  for split, folder, ids in (("train", "Train", (1, 2)), ("test", "Test", (690,))):
    for i in ids:
      low, high = fixtures.image(i), fixtures.image(500 + i)
      low_name = f"low{i:05d}.png" if config == "v2_real" else f"r{i:05d}.png"
      high_name = f"normal{i:05d}.png" if config == "v2_real" else low_name
      fixtures.write(tmp_path / "manual" / root / part / folder / "Low" / low_name, low)
      fixtures.write(tmp_path / "manual" / root / part / folder / "Normal" / high_name, high)
      expected[split][low_name] = (low, high)
  data_dir = str(tmp_path / "tfds")
  build.build(f"lol/{config}", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  for split in ("train", "test"):
    _check_pairs(_read(data_dir, f"lol/{config}", split), expected[split])


def test_missing_folder_names_layout_and_download_page(tmp_path):
  fixtures.lol_v1(tmp_path / "manual")
  (tmp_path / "manual" / "LOLdataset" / "eval15" / "high" / "100.png").unlink()
  (tmp_path / "manual" / "LOLdataset" / "eval15" / "high" / "101.png").unlink()
  (tmp_path / "manual" / "LOLdataset" / "eval15" / "high").rmdir()
  with pytest.raises(errors.LayoutError, match="eval15") as e:
    build.build("lol/v1", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  assert "daooshee.github.io" in str(e.value) and "our485" in str(e.value)


def test_partial_download_is_refused_unless_allowed(tmp_path):
  fixtures.lol_v1(tmp_path / "manual")
  with pytest.raises(errors.LayoutError, match="3 of the 485"):
    build.build("lol/v1", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))


def test_missing_partner_names_the_file(tmp_path):
  fixtures.lol_v1(tmp_path / "manual")
  (tmp_path / "manual" / "LOLdataset" / "our485" / "high" / "2.png").unlink()
  with pytest.raises(errors.BadFileError, match=r"no partner in .*our485/high: .*our485/low/2\.png"):
    build.build("lol/v1", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)


def test_size_mismatch_names_both_files(tmp_path):
  fixtures.lol_v1(tmp_path / "manual")
  fixtures.write(tmp_path / "manual" / "LOLdataset" / "our485" / "high" / "1.png", fixtures.image(0, h=8, w=10))
  with pytest.raises(errors.BadFileError, match=r"differ in size \(8x12, 8x10\).*low/1\.png.*high/1\.png"):
    build.build("lol/v1", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)


def test_truncated_file_fails_and_leaves_no_data_set(tmp_path):
  fixtures.lol_v1(tmp_path / "manual")
  # The test split is written after train: the build fails half-way.
  fixtures.truncate(tmp_path / "manual" / "LOLdataset" / "eval15" / "low" / "101.png")
  data_dir = tmp_path / "tfds"
  with pytest.raises(errors.BadFileError, match=r"unreadable or truncated image: .*eval15/low/101\.png"):
    build.build("lol/v1", tmp_path / "manual", data_dir=str(data_dir), allow_subset=True)
  assert not (data_dir / "lol" / "v1" / "1.0.0").exists()
  assert not list(data_dir.rglob("incomplete*"))
  assert not list(data_dir.rglob("*.array_record*"))
  assert not tfds.builder("lol/v1", data_dir=str(data_dir)).is_prepared()


def test_skip_bad_skips_and_counts(tmp_path):
  fixtures.lol_v1(tmp_path / "manual", train=5, test=2)
  root = tmp_path / "manual" / "LOLdataset"
  (root / "our485" / "high" / "2.png").unlink()  # missing partner
  fixtures.write(root / "our485" / "high" / "3.png", fixtures.image(0, h=6, w=12))  # size mismatch
  fixtures.truncate(root / "eval15" / "high" / "100.png")  # truncated
  (root / "our485" / "low" / "4.png").write_bytes(b"not an image")  # unreadable
  data_dir = str(tmp_path / "tfds")
  builder = build.build("lol/v1", tmp_path / "manual", data_dir=data_dir, allow_subset=True, skip_bad=True)
  assert builder.info.splits["train"].num_examples == 2 and builder.info.splits["test"].num_examples == 1
  assert set(_read(data_dir, "lol/v1", "train")) == {"1.png", "5.png"}
  assert len(builder.bad_files.skipped) == 4
  text = build.summary(builder)
  assert "skipped 4 bad example(s)" in text
  for name in ("high/3.png", "low/2.png", "eval15/high/100.png", "low/4.png"):
    assert name in text


def test_interrupted_build_leaves_no_data_set(tmp_path, monkeypatch):
  from lle.data.lol import builder as lol
  fixtures.lol_v1(tmp_path / "manual")
  calls = []

  def interrupted(low, high):
    calls.append(low)
    if len(calls) == 4:  # in the test split, after the train split is written
      raise KeyboardInterrupt
    return real(low, high)

  real = lol.load_pair
  monkeypatch.setattr(lol, "load_pair", interrupted)
  data_dir = tmp_path / "tfds"
  with pytest.raises(KeyboardInterrupt):
    build.build("lol/v1", tmp_path / "manual", data_dir=str(data_dir), allow_subset=True)
  assert len(calls) == 4
  assert not list(data_dir.rglob("*.array_record*")) and not list(data_dir.rglob("dataset_info.json"))
  assert not tfds.builder("lol/v1", data_dir=str(data_dir)).is_prepared()
  # A later build starts clean and completes.
  monkeypatch.setattr(lol, "load_pair", real)
  builder = build.build("lol/v1", tmp_path / "manual", data_dir=str(data_dir), allow_subset=True)
  assert builder.info.splits["train"].num_examples == 3

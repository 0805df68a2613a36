"""`dped`: built from small JPEGs written here in the release layout; bad input names the file or folder."""
import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle.data import build, errors


def _jpeg(path, seed, size=(20, 20)):
  path.parent.mkdir(parents=True, exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
  assert cv2.imwrite(str(path), image[..., ::-1])
  return cv2.imread(str(path))[..., ::-1]  # what a decoder reads back (JPEG is lossy)


def _release(root, phone="iphone"):
  """dped/<phone>/{training_data,test_data/patches}/{<phone>,canon}/N.jpg and two full-size photos."""
  expected = {"train": {}, "test": {}}
  for split, folder, ids in (("train", "training_data", (0, 1, 2)), ("test", "test_data/patches", (0, 1))):
    for i in ids:
      a = _jpeg(root / "dped" / phone / folder / phone / f"{i}.jpg", seed=10 * i + len(split))
      b = _jpeg(root / "dped" / phone / folder / "canon" / f"{i}.jpg", seed=100 + 10 * i + len(split))
      expected[split][f"{i}.jpg"] = (a, b)
  full = {f"{n}.jpg": _jpeg(root / "dped" / phone / "test_data" / "full_size_test_images" / f"{n}.jpg", seed=n,
                            size=(30, 40)) for n in (1, 2)}
  return expected, full


def _read(data_dir, name, split):
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_patch_pairs_and_full_size_photos(tmp_path):
  expected, full = _release(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  builder = build.build("dped/iphone", tmp_path / "manual", data_dir=data_dir)
  assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {"train": 3, "test": 2}
  for split in ("train", "test"):
    examples = _read(data_dir, "dped/iphone", split)
    assert set(examples) == set(expected[split])
    for name, (phone, canon) in expected[split].items():
      np.testing.assert_array_equal(examples[name]["phone"], phone)
      np.testing.assert_array_equal(examples[name]["canon"], canon)
  build.build("dped/iphone_full", tmp_path / "manual", data_dir=data_dir)
  photos = _read(data_dir, "dped/iphone_full", "test")
  assert set(photos) == set(full) and photos["2.jpg"]["low"].shape == (30, 40, 3)
  np.testing.assert_array_equal(photos["1.jpg"]["low"], full["1.jpg"])


def test_missing_folder_names_the_layout(tmp_path):
  _release(tmp_path / "manual", phone="sony")
  with pytest.raises(errors.LayoutError, match="DPED iphone folders") as e:
    build.build("dped/iphone", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))
  assert "dped/iphone/training_data/{iphone,canon}/N.jpg" in str(e.value)


def test_unpaired_patch_names_the_file(tmp_path):
  _release(tmp_path / "manual")
  (tmp_path / "manual" / "dped" / "iphone" / "training_data" / "canon" / "1.jpg").unlink()
  with pytest.raises(errors.BadFileError, match=r"no partner in .*training_data/canon: .*training_data/iphone/1.jpg"):
    build.build("dped/iphone", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))
  builder = build.build("dped/iphone", tmp_path / "manual", data_dir=str(tmp_path / "tfds2"), skip_bad=True)
  assert builder.info.splits["train"].num_examples == 2 and "skipped 1 bad example" in builder.bad_files.summary()


def test_unreadable_jpeg_names_the_file(tmp_path):
  _release(tmp_path / "manual")
  bad = tmp_path / "manual" / "dped" / "iphone" / "test_data" / "patches" / "canon" / "0.jpg"
  bad.write_bytes(bad.read_bytes()[:40])  # truncated
  with pytest.raises(errors.BadFileError, match=r"unreadable or truncated image: .*patches/canon/0.jpg"):
    build.build("dped/iphone", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))
  assert not (tmp_path / "tfds" / "dped" / "iphone").exists() or not list((tmp_path / "tfds" / "dped" / "iphone").glob("*/dataset_info.json"))

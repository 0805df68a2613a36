import numpy as np
import pytest
from etils import epath

from lle.data import errors
from tests.data import fixtures


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated_images_are_reported(tmp_path, ext):
  path = fixtures.write(tmp_path / f"x{ext}", fixtures.image(0, h=40, w=60))
  assert errors.decode_image(epath.Path(path)).shape == (40, 60, 3)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:int(len(data) * 0.95)])
  with pytest.raises(errors.BadFileError, match=r"unreadable or truncated image: .*x\..*"):
    errors.decode_image(epath.Path(path))


def test_decode_keeps_rgb_order_and_depth_and_refuses_grey(tmp_path):
  rgb16 = fixtures.image(1, dtype=np.uint16)
  out = errors.decode_image(epath.Path(fixtures.write(tmp_path / "a.png", rgb16)))
  assert out.dtype == np.uint16
  np.testing.assert_array_equal(out, rgb16)
  import cv2
  cv2.imwrite(str(tmp_path / "grey.png"), np.zeros((4, 4), np.uint8))
  with pytest.raises(errors.BadFileError, match=r"expected a colour \(RGB\) image.*grey\.png"):
    errors.decode_image(epath.Path(tmp_path / "grey.png"))
  (tmp_path / "empty.png").write_bytes(b"")
  with pytest.raises(errors.BadFileError, match="empty file"):
    errors.decode_image(epath.Path(tmp_path / "empty.png"))


def test_find_root_searches_two_levels_case_insensitively(tmp_path):
  (tmp_path / "a" / "LOL-v2" / "Real_Captured" / "Train" / "Low").mkdir(parents=True)
  root = errors.find_root(epath.Path(tmp_path), ["Real_captured/Train/Low"])
  assert root is not None and root.name == "LOL-v2"
  assert errors.find_root(epath.Path(tmp_path), ["Real_captured/Train/Low"], depth=1) is None
  assert errors.find_root(epath.Path(tmp_path), ["Synthetic/Train/Low"]) is None

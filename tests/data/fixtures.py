"""Tiny image folders in the real layouts of the data sets (8x12 pixels, a few files each)."""
import os

import cv2
import numpy as np

H, W = 8, 12


def image(seed, h=H, w=W, dtype=np.uint8):
  """A random RGB image, reproducible from `seed`."""
  rng = np.random.default_rng(seed)
  high = 256 if dtype == np.uint8 else 65536
  return rng.integers(0, high, (h, w, 3)).astype(dtype)


def write(path, rgb):
  """Writes an RGB array (uint8 / uint16 PNG or TIFF, float32 .hdr) with OpenCV."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
    raise OSError(f"could not write {path}")
  return str(path)


def truncate(path):
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])


def lol_v1(manual, train=3, test=2, root="LOLdataset"):
  """manual/LOLdataset/our485/{low,high}/N.png and eval15/...; returns {split: {name: (low, high)}}."""
  out = {}
  for split, folder, n, first in (("train", "our485", train, 1), ("test", "eval15", test, 100)):
    out[split] = {}
    for i in range(first, first + n):
      low, high = image(i), image(1000 + i)
      write(os.path.join(manual, root, folder, "low", f"{i}.png"), low)
      write(os.path.join(manual, root, folder, "high", f"{i}.png"), high)
      out[split][f"{i}.png"] = (low, high)
  return out

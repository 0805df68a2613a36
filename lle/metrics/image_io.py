"""Reading result images for scoring: 8/16-bit PNG, TIFF, JPEG (gray or RGB), Radiance .hdr, .npy.

Display-referred files (integers) come back on the 0-255 scale: 8-bit values as they are, 16-bit
values times 255/65535. Radiance ``.hdr`` (read with OpenCV) and float ``.npy`` arrays are linear HDR
values, returned unchanged. Every image is ``[H, W, C]`` float32 with ``C`` 1 or 3, RGB order.
"""

from __future__ import annotations

import dataclasses
import pathlib

import cv2
import numpy as np

LDR_SUFFIXES = ('.png', '.tif', '.tiff', '.jpg', '.jpeg')
HDR_SUFFIXES = ('.hdr', '.npy')
SUFFIXES = LDR_SUFFIXES + HDR_SUFFIXES


@dataclasses.dataclass(frozen=True)
class Image:
  """A loaded image: ``pixels`` [H, W, C] float32 and whether it is linear HDR."""

  path: pathlib.Path
  pixels: np.ndarray
  hdr: bool


def _to_hwc(arr: np.ndarray, path: pathlib.Path) -> np.ndarray:
  if arr.ndim == 2:
    arr = arr[..., None]
  if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
    raise ValueError(f'{path}: expected a gray, RGB or RGBA image, got an array of shape {arr.shape}')
  return arr[..., :3] if arr.shape[-1] == 4 else arr  # alpha is not part of the image


def read_image(path: str | pathlib.Path) -> Image:
  """Reads one image file (see module docstring); raises ``ValueError`` naming the file."""
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix == '.npy':
    arr = np.load(path)
    if not np.issubdtype(arr.dtype, np.floating):
      raise ValueError(f'{path}: .npy images must hold floats (linear HDR), got {arr.dtype}')
    return Image(path, _to_hwc(arr, path).astype(np.float32), hdr=True)
  if suffix not in SUFFIXES:
    raise ValueError(f'{path}: unsupported file type {suffix!r}; supported: {", ".join(SUFFIXES)}')
  flags = cv2.IMREAD_UNCHANGED if suffix != '.hdr' else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR
  arr = cv2.imread(str(path), flags)
  if arr is None:
    raise ValueError(f'{path}: OpenCV could not read this file')
  arr = _to_hwc(arr, path)
  if arr.shape[-1] == 3:
    arr = arr[..., ::-1]  # OpenCV decodes to BGR
  if suffix == '.hdr':
    return Image(path, np.ascontiguousarray(arr, np.float32), hdr=True)
  if arr.dtype == np.uint8:
    pixels = arr.astype(np.float32)
  elif arr.dtype == np.uint16:
    pixels = arr.astype(np.float32) * np.float32(255.0 / 65535.0)
  else:
    raise ValueError(f'{path}: expected 8- or 16-bit integers, got {arr.dtype}')
  return Image(path, np.ascontiguousarray(pixels), hdr=False)


def list_images(folder: str | pathlib.Path) -> dict[str, pathlib.Path]:
  """Image files of a folder keyed by name stem; two files with one stem raise ``ValueError``."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ValueError(f'{folder}: not a folder')
  found: dict[str, pathlib.Path] = {}
  for path in sorted(folder.iterdir()):
    if path.is_file() and path.suffix.lower() in SUFFIXES:
      if path.stem in found:
        raise ValueError(f'{folder}: {found[path.stem].name} and {path.name} share the name '
                         f'{path.stem!r}; cannot tell which to score')
      found[path.stem] = path
  return found

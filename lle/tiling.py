"""Inference on images of any size in bounded memory, with the result of one pass over the whole image.

The image (a host array in its stored dtype) is padded at the bottom and right to the method's size
multiple, then cut into same-size windows: each window is a `tile` x `tile` core plus `halo` pixels of
context on every side that is not the image border (a window at the border is shifted inward instead,
so every window has one shape and the model compiles once). A window's output equals the one-pass output
on its core, because the core is at least the receptive-field radius (`Method.tiling.halo`) away from
every window edge that is not also the image's edge, so each output pixel is taken from the core that
holds it; overlapping context is computed twice and dropped (averaging it would average equal values).
What a network computes from the whole image is computed once per image first
(`Method.tiling.context`: GLADNet's illumination branch, NEID's pooled attention features).

Memory is bounded by the window batch and by the image and output themselves in their stored dtypes
(uint8 / uint16 / float32 HDR), not by the network's activations over the whole image.
"""
import dataclasses
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from lle.methods import Method


def to_float(pixels: np.ndarray) -> np.ndarray:
  """uint8 / uint16 -> float32 in [0, 1]; floats unchanged (as `lle.data.pipeline.to_float`)."""
  if pixels.dtype == np.uint8:
    return pixels.astype(np.float32) / np.float32(255.0)
  if pixels.dtype == np.uint16:
    return pixels.astype(np.float32) / np.float32(65535.0)
  return pixels.astype(np.float32)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
  """[H, W, C] -> reflect-padded at the bottom/right so H and W divide by `multiple` (edge-padded where
  the image is too small to reflect), as `lle.evaluate.pad_to_multiple` does for batches."""
  h, w = image.shape[:2]
  ph, pw = -h % multiple, -w % multiple
  if ph == pw == 0:
    return image
  mode = "reflect" if ph < h and pw < w else "edge"
  return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def _starts(length: int, core: int, window: int, halo: int) -> list[tuple[int, int, int]]:
  """(window start, core start, core end) along one axis: cores of `core` pixels tile [0, length); each
  window of `window` pixels holds its core with `halo` pixels of context, shifted inward at the ends."""
  out = []
  for c0 in range(0, length, core):
    c1 = min(c0 + core, length)
    start = min(max(c0 - halo, 0), length - window)
    out.append((start, c0, c1))
  return out


@dataclasses.dataclass
class TiledImage:
  """One image cut into same-size windows. `pixels` [H, W, C] is already padded to the size multiple."""
  pixels: np.ndarray
  tile: int
  halo: int
  batch: int = 1

  def __post_init__(self):
    h, w = self.pixels.shape[:2]
    self.window = (min(h, self.tile + 2 * self.halo), min(w, self.tile + 2 * self.halo))
    self.boxes = [(ry, rx, cy0, cx0, cy1, cx1)
                  for ry, cy0, cy1 in _starts(h, self.tile, self.window[0], self.halo)
                  for rx, cx0, cx1 in _starts(w, self.tile, self.window[1], self.halo)]

  @property
  def size(self) -> tuple[int, int]:
    return self.pixels.shape[:2]

  def sample(self, rows, cols) -> np.ndarray:
    """Pixels at the given rows x cols as float32 [1, len(rows), len(cols), C]."""
    return to_float(self.pixels[np.asarray(rows)][:, np.asarray(cols)])[None]

  def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(windows float32 [B, h, w, C], offsets int32 [B, 2] in the image, cores int32 [B, 4] (top, left,
    bottom, right) inside each window). The last batch is filled up with copies of its last window whose
    cores are empty, so every batch has one shape."""
    wh, ww = self.window
    for start in range(0, len(self.boxes), self.batch):
      boxes = self.boxes[start:start + self.batch]
      pad = self.batch - len(boxes)
      boxes = boxes + [boxes[-1]] * pad
      windows = np.stack([to_float(self.pixels[ry:ry + wh, rx:rx + ww]) for ry, rx, *_ in boxes])
      offsets = np.asarray([(ry, rx) for ry, rx, *_ in boxes], np.int32)
      cores = np.asarray([(cy0 - ry, cx0 - rx, cy1 - ry, cx1 - rx) for ry, rx, cy0, cx0, cy1, cx1 in boxes],
                         np.int32)
      if pad:
        cores[-pad:] = 0
      yield windows, offsets, cores


class TiledPredictor:
  """`predict(image)` for one method and state, jitted once per window shape (kept across images)."""

  def __init__(self, method: Method, state, *, tile: int = 512, batch: int = 1, sharding=None):
    self.method, self.state, self.batch, self.sharding = method, state, batch, sharding
    multiple = method.size_multiple
    tiling = method.tiling
    # A method without `tiling` (its outputs depend on the whole image, e.g. through instance
    # normalisation) runs each image in one pass: one window, the whole padded image (memory grows with it).
    self.tile = None if tiling is None else max(multiple, tile // multiple * multiple)
    self.halo = 0 if tiling is None else tiling.halo
    self.scale = 1 if tiling is None else tiling.output_scale
    window_fn = (tiling and tiling.predict_window) or (lambda s, x, ctx, off, cores, size: method.predict(s, x))
    self._window = jax.jit(window_fn)

  def __call__(self, image: np.ndarray, *, state=None, out_dtype=np.float32, convert=None) -> np.ndarray:
    """image [H, W, C] (uint8, uint16 or float in [0, 1]) -> output [s H, s W, C'] as `out_dtype`.

    `state` replaces the one given at construction (an evaluation during training). `convert(float32
    [h, w, C']) -> out_dtype array` turns each core's output into what is stored (for example 8-bit
    codes), so the whole output never exists as float32.
    """
    state = self.state if state is None else state
    h, w = image.shape[:2]
    padded = pad_to_multiple(image, self.method.size_multiple)
    tiled = TiledImage(padded, self.tile or max(padded.shape[:2]), self.halo, self.batch)
    tiling = self.method.tiling
    context = tiling.context(state, tiled) if tiling is not None and tiling.context else None
    s = self.scale
    out = None
    for windows, offsets, cores in tiled.batches():
      windows = jnp.asarray(windows) if self.sharding is None else jax.device_put(windows, self.sharding)
      result = np.asarray(self._window(state, windows, context, jnp.asarray(offsets), jnp.asarray(cores),
                                       jnp.asarray(tiled.size, jnp.int32)))
      if out is None:
        out = np.empty((s * h, s * w, result.shape[-1]), out_dtype)
      for k, (ry, rx) in enumerate(offsets):
        top, left, bottom, right = cores[k]
        bottom, right = min(bottom, h - ry), min(right, w - rx)  # drop the padding
        if bottom <= top or right <= left:
          continue
        core = result[k, s * top:s * bottom, s * left:s * right]
        out[s * (ry + top):s * (ry + bottom), s * (rx + left):s * (rx + right)] = (
            core if convert is None else convert(core))
    return out


"""GLADNet (Wang et al. 2018): global illumination estimation on a fixed-size copy of the input, then
detail reconstruction at full resolution from [illumination features, input]."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lle.nn.layers import conv_fn, initializer


def resize_nearest(x, size):
  """Nearest-neighbour resize of [N, H, W, C] to `size` = (h, w) as TensorFlow 1's
  `resize_nearest_neighbor` (align_corners=False, half_pixel_centers=False), which the official GLADNet
  code uses: output d reads source index `nearest_source(out, in)[d]`. Where that index table is a repeat
  (up) or a strided slice (down), as for GLADNet's decoder and its resizes between 96^2 and 384^2 crops,
  the pixels are taken without a gather, whose gradient would be a scatter-add."""
  for axis, out in ((1, size[0]), (2, size[1])):
    x = _nearest_axis(x, axis, out)
  return x


def nearest_source(out: int, size: int) -> np.ndarray:
  """The source index TensorFlow's legacy nearest resize reads for each of `out` outputs from `size`:
  floor(float32(d) * float32(size / out)), product and scale rounded to float32 (resize_nearest_neighbor_op.cc
  with the scale of image_resizer_state.h), at most size - 1. Where the float32 product falls just below a
  whole number it is one lower than the exact floor(d * size / out) (200 -> 96: output 60 reads 124, not 125)."""
  scale = np.float32(size) / np.float32(out)
  return np.minimum(np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64), size - 1)


def _nearest_axis(x, axis: int, out: int):
  size = x.shape[axis]
  if out == size:
    return x
  source = nearest_source(out, size)
  d = np.arange(out)
  if out % size == 0 and np.array_equal(source, d // (out // size)):
    return jnp.repeat(x, out // size, axis=axis)
  if size % out == 0 and np.array_equal(source, d * (size // out)):
    return jax.lax.slice_in_dim(x, 0, size, size // out, axis=axis)
  return jnp.take(x, source, axis=axis)


class GLADNet(nn.Module):
  """Encoder: `num_blocks` stride-2 conv + ReLU blocks on the input resized to `global_size`. Decoder: as
  many resize-conv blocks (nearest resize to the mirrored encoder size, conv, ReLU), each of the first
  num_blocks - 1 summed with the mirrored encoder output; the last returns to `global_size` with no skip.
  The result is resized to the input's size, concatenated with the input, and passed through the
  detail convolutions (ReLU) and a final 3-channel conv with `output_activation`."""
  num_blocks: int = 6
  global_size: int = 96
  global_features: int = 64
  detail_features: Sequence[int] = (128, 128, 128, 128)
  kernel_size: int = 3
  output_activation: str = "relu"
  kernel_init: str = "glorot_uniform"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x, *, illumination=None, illumination_only: bool = False):
    """x [N, H, W, 3] -> [N, H, W, 3].

    `illumination_only=True` returns the global branch's output at `global_size` (computed from x,
    which may be just the `global_size` nearest-resized copy); `illumination` [N, H, W, global_features]
    supplies that output already resized to x's size, and the global branch is skipped (tiled inference
    computes it once per image: `lle.methods.gladnet`).
    """
    # Stride 2 stays XLA's convolution: the phase form of a 3x3 stride-2 one measured 0.97x here.
    conv = lambda f, stride=1: nn.Conv(f, (self.kernel_size,) * 2, strides=stride, padding="SAME",
                                       kernel_init=initializer(self.kernel_init),
                                       bias_init=nn.initializers.zeros,
                                       conv_general_dilated=conv_fn(self.forms) if stride == 1 else None)
    # Built in the order the layers are named (Conv_0, Conv_1, ...), whichever part runs.
    encoder = [conv(self.global_features, 2) for _ in range(self.num_blocks)]
    decoder = [conv(self.global_features) for _ in range(self.num_blocks)]
    detail = [conv(f) for f in self.detail_features]
    output = conv(3)
    h, w = x.shape[1:3]
    if illumination is None:
      g = resize_nearest(x, (self.global_size, self.global_size))
      skips = []
      for layer in encoder:
        g = nn.relu(layer(g))
        skips.append(g)
      # Decoder block i returns to the size of encoder block num_blocks - 2 - i (the global size last).
      targets = [s.shape[1:3] for s in skips[-2::-1]] + [(self.global_size, self.global_size)]
      for i, (layer, size) in enumerate(zip(decoder, targets)):
        g = nn.relu(layer(resize_nearest(g, size)))
        if i < self.num_blocks - 1:
          g = g + skips[-2 - i]
      if illumination_only:
        return g
      illumination = resize_nearest(g, (h, w))
    y = jnp.concatenate([illumination, x], axis=-1)
    for layer in detail:
      y = nn.relu(layer(y))
    y = output(y)
    if self.output_activation == "relu":
      return nn.relu(y)
    if self.output_activation == "none":
      return y
    raise ValueError(f"unknown output_activation {self.output_activation!r}; expected 'relu' or 'none'")

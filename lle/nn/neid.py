"""NEID (Jiang et al. 2021): a U-Net codec whose output is upsampled 2x by a sub-pixel convolution (Light
Enhancement, LE), a second decoder + super-resolution head on the same encoder (Detail Refinement, DR),
and channel attention guided by DR features that weights the features passed to LE's decoder (Feature
Fusing, FF). The paper gives no widths or kernel sizes; the defaults are those of the architectures it
cites (U-Net of Ronneberger et al. [18], sub-pixel convolution [2], channel attention of [1]).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lle.nn.layers import conv_fn, initializer, max_pool


def depth_to_space(x, r: int):
  """[N, H, W, r*r*C] -> [N, r*H, r*W, C], channels read as (row offset, column offset, C) (TensorFlow's
  `depth_to_space`, the pixel shuffle of sub-pixel convolution)."""
  n, h, w, c = x.shape
  c_out = c // (r * r)
  x = x.reshape(n, h, w, r, r, c_out).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h * r, w * r, c_out)


class _Module(nn.Module):
  kernel_size: int = 3
  kernel_init: str = "normal_0.02"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  def conv(self, features, kernel_size=None, name=None):
    k = kernel_size or self.kernel_size
    return nn.Conv(features, (k, k), padding="SAME", kernel_init=initializer(self.kernel_init),
                   bias_init=nn.initializers.zeros, name=name, conv_general_dilated=conv_fn(self.forms))


class DoubleConv(_Module):
  """U-Net's unit: two k x k convolutions, each with a ReLU ("same" padding so sizes stay aligned)."""
  features: int = 64

  @nn.compact
  def __call__(self, x):
    return nn.relu(self.conv(self.features)(nn.relu(self.conv(self.features)(x))))


class Encoder(_Module):
  """U-Net contracting path: DoubleConv per level, 2x2 max-pooling between levels. Returns every level's
  output, finest first (the last is the bottleneck)."""
  features: Sequence[int] = (64, 128, 256, 512, 1024)

  @nn.compact
  def __call__(self, x):
    levels = []
    for i, f in enumerate(self.features):
      if i:
        x = max_pool(x, 2, forms=self.forms)
      x = DoubleConv(features=f, kernel_size=self.kernel_size, kernel_init=self.kernel_init, forms=self.forms)(x)
      levels.append(x)
    return levels


class Decoder(_Module):
  """U-Net expansive path from the bottleneck: per level, a 2x2 stride-2 up-convolution (computed as a 1x1
  conv to 4 f channels + depth-to-space: the same function and parameter count, since a 2x2 stride-2
  transposed convolution's output blocks do not overlap), concatenation with that level's skip feature,
  and a DoubleConv. `skips` are finest first and exclude the bottleneck. Returns each level's output,
  coarsest first (the last is at the input's resolution)."""
  features: Sequence[int] = (64, 128, 256, 512)

  @nn.compact
  def __call__(self, bottleneck, skips, *, fuse=None):
    x, outs = bottleneck, []
    for level in reversed(range(len(self.features))):
      f = self.features[level]
      x = depth_to_space(self.conv(4 * f, 1, name=f"up_{level}")(x), 2)
      skip = skips[level] if fuse is None else fuse(level, skips[level])
      x = DoubleConv(features=f, kernel_size=self.kernel_size, kernel_init=self.kernel_init, forms=self.forms,
                     name=f"block_{level}")(
          jnp.concatenate([skip, x], axis=-1))
      outs.append(x)
    return outs


class ChannelAttention(nn.Module):
  """Squeeze-and-excitation channel attention (the feature attention of Anwar & Barnes 2019 [1]):
  global average pool -> 1x1 conv to C / reduction -> ReLU -> 1x1 conv to C -> sigmoid: one weight per
  channel."""
  reduction: int = 16
  kernel_init: str = "normal_0.02"

  @nn.compact
  def __call__(self, x, pooled=None):
    """`pooled` [N, C]: the global average of x when it is known already (tiled inference)."""
    c = x.shape[-1]
    dense = lambda f: nn.Dense(f, kernel_init=initializer(self.kernel_init), bias_init=nn.initializers.zeros)
    w = jnp.mean(x, axis=(1, 2), keepdims=True) if pooled is None else pooled[:, None, None, :]
    return nn.sigmoid(dense(c)(nn.relu(dense(max(c // self.reduction, 1))(w))))


class NEID(_Module):
  """LE (+ DR, + FF). `__call__(x, with_dr=False)` returns LE's image; with `with_dr=True` also DR's.

  The DR decoder runs at inference only when FF needs its features; DR's super-resolution head
  (`dr_head`) runs only with `with_dr` (training), so inference never reads its parameters.

  FF's attention pools DR features over the whole image, the one image-global step. For tiled inference
  `dr_features_only=True` returns DR's decoder features (finest level first), and `pooled_dr` (one [N, C]
  average per level, finest first) replaces the pooling.
  """
  features: Sequence[int] = (64, 128, 256, 512, 1024)
  upsample: bool = True  # LE's sub-pixel 2x module; False: a plain U-Net (1x1 conv to RGB)
  detail_refinement: bool = True
  feature_fusing: bool = True
  attention_reduction: int = 16
  scale: int = 2

  def _head(self, x, name):
    """Sub-pixel convolution (Shi et al. / Caballero et al. [2]): conv to 3 r^2 channels, pixel shuffle."""
    if not self.upsample:
      return self.conv(3, 1, name=name)(x)  # U-Net's final 1x1 convolution
    return depth_to_space(self.conv(3 * self.scale**2, name=name)(x), self.scale)

  @nn.compact
  def __call__(self, x, *, with_dr: bool = False, dr_features_only: bool = False, pooled_dr=None):
    if self.feature_fusing and not self.detail_refinement:
      raise ValueError("feature fusing needs the detail refinement branch (model.detail_refinement)")
    mod = dict(kernel_size=self.kernel_size, kernel_init=self.kernel_init, forms=self.forms)
    levels = Encoder(features=self.features, name="encoder", **mod)(x)
    skips, bottleneck = levels[:-1], levels[-1]
    fuse = dr_levels = None
    if self.detail_refinement and (with_dr or self.feature_fusing):
      dr_levels = Decoder(features=self.features[:-1], name="dr_decoder", **mod)(bottleneck, skips)
    if dr_features_only:
      return dr_levels[::-1]
    if self.feature_fusing:
      attention = [ChannelAttention(reduction=self.attention_reduction, kernel_init=self.kernel_init,
                                   name=f"ff_{i}")
                   for i in range(len(skips))]
      dr_by_level = dr_levels[::-1]  # finest first, as the skips

      def fuse(level, skip):
        # FF: channel weights computed from the DR feature of this level; the fused feature passed to
        # LE's decoder is the weighted sum a * skip + (1 - a) * DR feature.
        d = dr_by_level[level]
        a = attention[level](d, None if pooled_dr is None else pooled_dr[level])
        return a * skip + (1.0 - a) * d

    le = Decoder(features=self.features[:-1], name="le_decoder", **mod)(bottleneck, skips, fuse=fuse)[-1]
    out = self._head(le, "le_head")
    if not with_dr:
      return out
    if not self.detail_refinement:
      return out, None
    return out, self._head(dr_levels[-1], "dr_head")

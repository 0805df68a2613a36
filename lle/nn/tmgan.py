"""Montulet & Briassouli 2019: the lightness U-Net generator (sec. 2.1, Fig. 1) and the PatchGAN
discriminator (sec. 2.2, Fig. 2)."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lle.nn.layers import InstanceNorm, conv_fn, initializer

UPSAMPLING = ("nearest", "bilinear")


def reflect_conv(x, features, *, kernel_size, stride, kernel_init, use_bias=True, name=None, forms="auto"):
  """Reflection padding of (k - 1) / 2, then a k x k convolution without padding: a stride-2 conv halves
  an even side exactly, a stride-1 conv keeps it."""
  pad = (kernel_size - 1) // 2
  x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
  return nn.Conv(features, (kernel_size,) * 2, strides=stride, padding="VALID", use_bias=use_bias,
                 kernel_init=kernel_init, conv_general_dilated=conv_fn(forms), name=name)(x)


def upsample2x(x, method: str):
  if method not in UPSAMPLING:
    raise ValueError(f"unknown upsampling {method!r}; expected one of {UPSAMPLING}")
  n, h, w, c = x.shape
  if method == "nearest":  # Keras UpSampling2D's default: each pixel repeated 2 x 2
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear")


class LightnessUNet(nn.Module):
  """len(features) down blocks (reflection pad -> 3x3 conv stride 2 -> instance norm -> LeakyReLU),
  len(features) - 1 up blocks (upsample x2 -> reflection pad -> 3x3 conv stride 1 -> instance norm ->
  LeakyReLU -> concatenation with the mirrored down block's output), then upsample x2 -> conv ->
  tanh. Up block i has the width of the down block it is concatenated with, so the last one ends at
  N/2 x N/2 x 2 features[0] (Fig. 1: 32 with features[0] = 16). In: L / 100 [N, H, W, 1]; out: tanh
  values [N, H, W, 1]. H and W must divide by 2 ** len(features).
  """
  features: Sequence[int] = (16, 32, 64, 128, 128, 128, 128)
  kernel_size: int = 3
  negative_slope: float = 0.2
  norm_epsilon: float = 1e-3
  upsampling: str = "nearest"
  kernel_init: str = "glorot_uniform"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x):
    multiple = 2 ** len(self.features)
    if x.shape[1] % multiple or x.shape[2] % multiple:
      raise ValueError(f"LightnessUNet input {x.shape[1]}x{x.shape[2]} must divide by {multiple}; pad it first")
    init = initializer(self.kernel_init)
    conv = lambda h, f, stride: reflect_conv(h, f, kernel_size=self.kernel_size, stride=stride, kernel_init=init,
                                             forms=self.forms)
    block = lambda h: nn.leaky_relu(InstanceNorm(epsilon=self.norm_epsilon, forms=self.forms)(h), self.negative_slope)
    skips = []
    for f in self.features:
      x = block(conv(x, f, 2))
      skips.append(x)
    for skip in reversed(skips[:-1]):
      x = block(conv(upsample2x(x, self.upsampling), skip.shape[-1], 1))
      x = jnp.concatenate([x, skip], axis=-1)
    return jnp.tanh(conv(upsample2x(x, self.upsampling), 1, 1))


class PatchDiscriminator(nn.Module):
  """PatchGAN: 3x3 stride-2 convolutions (reflection padded) -> LeakyReLU, instance norm from the second
  on (pix2pix leaves the first unnormalised), then a 3x3 stride-1 convolution to one linear score per
  patch: an N / 2^len(features) map (N/128 for seven). In: [N, H, W, C] lightness maps (C = 2 when the
  input L is concatenated to the judged L)."""
  features: Sequence[int] = (16, 32, 64, 128, 128, 128, 128)
  kernel_size: int = 3
  negative_slope: float = 0.2
  norm_epsilon: float = 1e-3
  kernel_init: str = "glorot_uniform"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x):
    init = initializer(self.kernel_init)
    for i, f in enumerate(self.features):
      x = reflect_conv(x, f, kernel_size=self.kernel_size, stride=2, kernel_init=init, forms=self.forms)
      if i > 0:
        x = InstanceNorm(epsilon=self.norm_epsilon, forms=self.forms)(x)
      x = nn.leaky_relu(x, self.negative_slope)
    return reflect_conv(x, 1, kernel_size=self.kernel_size, stride=1, kernel_init=init, forms=self.forms)[..., 0]

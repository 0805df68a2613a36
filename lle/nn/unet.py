"""U-Net encoder-decoder (Ronneberger et al. 2015) in the strided, pool-free form of pix2pix."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lle.nn.layers import BatchNorm, ConvTranspose2x, conv_fn, initializer

ACTIVATIONS = {"sigmoid": nn.sigmoid, "tanh": nn.tanh, "relu": nn.relu, "none": lambda x: x}


class UNet(nn.Module):
  """len(features) stride-2 convolutions down, as many stride-2 transposed convolutions up.

  Every layer but the last is conv (no bias: the norm's shift is the bias) -> batch norm -> LeakyReLU;
  decoder layer i concatenates the mirrored encoder feature map before its transposed convolution; the
  last layer maps to `out_channels` with `output_activation`. Input H and W must divide by 2 ** len(features).
  """
  features: Sequence[int] = (64, 128, 256, 512, 512)
  kernel_size: int = 4
  out_channels: int = 3
  negative_slope: float = 0.2
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  output_activation: str = "sigmoid"
  kernel_init: str = "normal_0.02"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x, *, train: bool):
    multiple = 2 ** len(self.features)
    if x.shape[1] % multiple or x.shape[2] % multiple:
      raise ValueError(f"UNet input {x.shape[1]}x{x.shape[2]} must divide by {multiple}; pad it first")
    init = initializer(self.kernel_init)
    norm = lambda: BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             epsilon=self.bn_epsilon, forms=self.forms)
    act = lambda h: nn.leaky_relu(h, self.negative_slope)
    pad = (self.kernel_size - 1) // 2
    skips = []
    for f in self.features:
      x = nn.Conv(f, (self.kernel_size,) * 2, strides=2, padding=((pad, pad), (pad, pad)), use_bias=False,
                  kernel_init=init, conv_general_dilated=conv_fn(self.forms))(x)  # no bias: BN's shift is it
      x = act(norm()(x))
      skips.append(x)
    up_features = list(self.features[-2::-1]) + [self.out_channels]
    for i, f in enumerate(up_features):
      if i > 0:
        x = jnp.concatenate([x, skips[-1 - i]], axis=-1)
      last = i == len(up_features) - 1
      x = ConvTranspose2x(f, self.kernel_size, use_bias=last, kernel_init=init, forms=self.forms)(x)
      if not last:
        x = act(norm()(x))
    return ACTIVATIONS[self.output_activation](x)

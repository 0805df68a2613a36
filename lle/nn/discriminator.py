"""Image discriminators."""
from typing import Sequence

import flax.linen as nn

from lle.nn.layers import BatchNorm, conv_fn, initializer


class ConvFCDiscriminator(nn.Module):
  """Strided conv -> batch norm -> LeakyReLU blocks, then fully connected layers with LeakyReLU, then
  one logit per image (Ning et al. 2018, Fig. 1 and sec. 3)."""
  conv_features: Sequence[int] = (64, 128, 256, 512, 512, 512)
  fc_features: Sequence[int] = (256,)
  kernel_size: int = 4
  negative_slope: float = 0.2
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  kernel_init: str = "normal_0.02"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x, *, train: bool):
    init = initializer(self.kernel_init)
    pad = (self.kernel_size - 1) // 2
    for f in self.conv_features:
      x = nn.Conv(f, (self.kernel_size,) * 2, strides=2, padding=((pad, pad), (pad, pad)), use_bias=False,
                  kernel_init=init, conv_general_dilated=conv_fn(self.forms))(x)  # no bias: BN's shift is it
      x = BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                    forms=self.forms)(x)
      x = nn.leaky_relu(x, self.negative_slope)
    x = x.reshape(x.shape[0], -1)
    for f in self.fc_features:
      x = nn.leaky_relu(nn.Dense(f, kernel_init=init)(x), self.negative_slope)
    return nn.Dense(1, kernel_init=init)(x)[:, 0]

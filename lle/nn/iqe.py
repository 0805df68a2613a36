"""The DPED networks (Ignatov et al. 2017) that Adlakha et al. 2021 ("IQE") train: a residual generator
at full resolution and a grey-image discriminator.

Layer names follow the official TensorFlow code (aiff22/DPED `models.py`) so that its checkpoints map
one to one (`lle.weights`): generator convolutions `W1`..`W12` (each a kernel and a bias), its norms
`norm2`..`norm9` after convolutions 2-9; discriminator `conv1`..`conv5`, `norm2`..`norm5`, `fc`, `out`.
"""
import flax.linen as nn
import jax.numpy as jnp

from lle.nn.layers import BatchNorm, broadcast_rows, conv_fn, initializer, sum_rows

NORMS = ("instance", "batch")


def init_fn(name: str):
  """'truncated_normal_<std>': TF1's truncated_normal(stddev) (cut at 2 std, std not rescaled), which
  DPED's `weight_variable` uses; any other name goes to `lle.nn.layers.initializer`."""
  if name.startswith("truncated_normal_"):
    return nn.initializers.truncated_normal(stddev=float(name.rsplit("_", 1)[1]))
  return initializer(name)


class InstanceNorm(nn.Module):
  """Per image and channel: (x - mean) / sqrt(var + eps) * scale + shift over H, W (biased variance, as
  `tf.nn.moments`), with a learnable scale (init 1) and shift (init 0): DPED's `_instance_norm`."""
  epsilon: float = 1e-3
  forms: str = "auto"  # lle.nn.layers.LAYER_FORMS: sums as matrix products ("cpu") or XLA's reductions

  @nn.compact
  def __call__(self, x, stats=None):
    """`stats`: (mean, var) [N, 1, 1, C] to use instead of x's own (a window of a larger image normalised
    with the whole image's statistics); the statistics used are sown into the `norm_stats` collection."""
    n, h, w, c = x.shape
    rows = x.reshape(n, h * w, c)
    per_image = lambda v: broadcast_rows(jnp.broadcast_to(v, (n, 1, 1, c)).reshape(n, c), h * w, self.forms)
    if stats is None:  # per-image sums as matrix products (`sum_rows`: XLA's CPU reductions are slower)
      mean = sum_rows(rows, self.forms) / (h * w)
      centred = rows - broadcast_rows(mean, h * w, self.forms)
      stats = mean[:, None, None], (sum_rows(centred * centred, self.forms) / (h * w))[:, None, None]
    else:  # e.g. one image's statistics for a batch of its windows
      centred = rows - per_image(stats[0])
    self.sow("norm_stats", "stats", stats)
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    shift = self.param("shift", nn.initializers.zeros, (c,), jnp.float32)
    y = centred / per_image(jnp.sqrt(stats[1] + self.epsilon))
    per_channel = lambda v: broadcast_rows(v[None], n * h * w, self.forms)
    return (y.reshape(1, n * h * w, c) * per_channel(scale) + per_channel(shift)).reshape(x.shape)


def _norm(kind: str, epsilon: float, momentum: float, name: str, train: bool, forms: str):
  if kind == "instance":
    return InstanceNorm(epsilon=epsilon, name=name, forms=forms)
  if kind == "batch":
    return BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon, name=name, forms=forms)
  raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


class Generator(nn.Module):
  """conv 9x9 + ReLU; `num_blocks` residual blocks of 2 x [conv 3x3 -> norm -> ReLU] with the block's input
  added after the second ReLU; 2 x (conv 3x3 + ReLU); conv 9x9 to 3 channels; output tanh(x) * scale +
  offset (DPED: 0.58, 0.5). Stride 1, zero 'SAME' padding throughout, so any input size works."""
  features: int = 64
  num_blocks: int = 4
  norm: str = "instance"
  norm_epsilon: float = 1e-3
  bn_momentum: float = 0.99
  output_scale: float = 0.58
  output_offset: float = 0.5
  kernel_init: str = "truncated_normal_0.01"
  bias_init: float = 0.01
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x, train: bool = False, norm_stats=None):
    """`norm_stats`: {norm name: (mean, var)} for instance norm to use instead of x's own statistics."""
    conv = lambda k, f, i: nn.Conv(f, (k, k), padding="SAME", name=f"W{i}",  # noqa: E731
                                   kernel_init=init_fn(self.kernel_init), conv_general_dilated=conv_fn(self.forms),
                                   bias_init=nn.initializers.constant(self.bias_init))

    def norm(i):
      layer = _norm(self.norm, self.norm_epsilon, self.bn_momentum, f"norm{i}", train, self.forms)
      if self.norm == "instance" and norm_stats is not None:
        return lambda v: layer(v, norm_stats[f"norm{i}"])
      return layer

    h = nn.relu(conv(9, self.features, 1)(x))
    i = 2
    for _ in range(self.num_blocks):
      skip = h
      h = nn.relu(norm(i)(conv(3, self.features, i)(h)))
      h = nn.relu(norm(i + 1)(conv(3, self.features, i + 1)(h))) + skip
      i += 2
    for _ in range(2):
      h = nn.relu(conv(3, self.features, i)(h))
      i += 1
    return jnp.tanh(conv(9, 3, i)(h)) * self.output_scale + self.output_offset


class Discriminator(nn.Module):
  """On grey patches [N, H, W, 1]: conv 48@11x11 stride 4 (no norm), then 128@5x5 s2, 192@3x3, 192@3x3,
  128@3x3 s2, each conv -> LeakyReLU(0.2) -> norm; flatten; FC 1024 + LeakyReLU; FC 2. Returns the two
  logits (class 0: the target photo, class 1: an enhanced image); softmax gives DPED's probabilities."""
  conv_features: tuple = (48, 128, 192, 192, 128)
  kernel_sizes: tuple = (11, 5, 3, 3, 3)
  strides: tuple = (4, 2, 1, 1, 2)
  fc_features: int = 1024
  negative_slope: float = 0.2
  norm: str = "instance"
  norm_epsilon: float = 1e-3
  bn_momentum: float = 0.99
  kernel_init: str = "truncated_normal_0.01"
  bias_init: float = 0.01
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x, train: bool = False):
    dense_init = dict(kernel_init=init_fn(self.kernel_init), bias_init=nn.initializers.constant(self.bias_init))
    for i, (f, k, s) in enumerate(zip(self.conv_features, self.kernel_sizes, self.strides), start=1):
      x = nn.Conv(f, (k, k), strides=(s, s), padding="SAME", name=f"conv{i}",
                  conv_general_dilated=conv_fn(self.forms), **dense_init)(x)
      x = nn.leaky_relu(x, self.negative_slope)
      if i > 1:
        x = _norm(self.norm, self.norm_epsilon, self.bn_momentum, f"norm{i}", train, self.forms)(x)
    x = x.reshape(x.shape[0], -1)
    x = nn.leaky_relu(nn.Dense(self.fc_features, name="fc", **dense_init)(x), self.negative_slope)
    return nn.Dense(2, name="out", **dense_init)(x)

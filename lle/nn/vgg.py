"""VGG-16 / VGG-19 feature extractors (Simonyan & Zisserman 2015, configurations D and E), for feature
losses on ImageNet weights (`lle.weights` reads them; `lle.losses.perceptual` uses them).

Layers are named as in the original Caffe release and everything derived from it (MatConvNet, DPED,
Keras' blocks): conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ... relu5_4 (VGG-19) / relu5_3
(VGG-16). Convolutions are 3x3, stride 1, zero padding 1; pools are 2x2 max, stride 2. The network runs
only up to the deepest layer asked for, so a relu2_2 loss never pays for block 5.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from lle.nn.layers import conv_fn, max_pool

WIDTHS = (64, 128, 256, 512, 512)
CONVS_PER_BLOCK = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def layer_names(depth: int) -> tuple[str, ...]:
  """Every layer in order: conv, relu for each convolution, then the block's pool."""
  if depth not in CONVS_PER_BLOCK:
    raise ValueError(f"VGG depth {depth} is not supported; expected 16 or 19")
  names = []
  for block, convs in enumerate(CONVS_PER_BLOCK[depth], start=1):
    for i in range(1, convs + 1):
      names += [f"conv{block}_{i}", f"relu{block}_{i}"]
    names.append(f"pool{block}")
  return tuple(names)


def conv_names(depth: int) -> tuple[str, ...]:
  return tuple(n for n in layer_names(depth) if n.startswith("conv"))


# How "the first N layers" of a VGG can be counted. Montulet & Briassouli (sec. 2.1) keep "the first
# five layers" without saying which count they use; each count names a different tap:
#   torchvision: the modules of `vgg.features` (conv, ReLU and pool each count): 5 -> pool1
#   keras:       the layers of keras.applications.VGG19 after the input (conv+ReLU fused, pool): 5 -> relu2_2
#   conv:        convolutions only (each with its ReLU), as in "VGG54"-style names: 5 -> relu3_1
LAYER_COUNTS = ("torchvision", "keras", "conv")


def nth_layer(depth: int, n: int, counting: str) -> str:
  """The name of the output of "the first `n` layers" under a counting convention (LAYER_COUNTS)."""
  names = layer_names(depth)
  if counting == "torchvision":
    counted = list(names)
  elif counting == "keras":
    counted = [x for x in names if not x.startswith("conv")]  # a Keras conv layer ends in its ReLU
  elif counting == "conv":
    counted = [x for x in names if x.startswith("relu")]
  else:
    raise ValueError(f"unknown layer counting {counting!r}; expected one of {LAYER_COUNTS}")
  if not 1 <= n <= len(counted):
    raise ValueError(f"VGG-{depth} has {len(counted)} layers counted as {counting!r}; asked for {n}")
  return counted[n - 1]


class VGG(nn.Module):
  """Returns {tap: features} for each name in `taps` (default: the deepest layer), on inputs that are
  already preprocessed the way the weights expect (see `lle.weights.Preprocess`).

  pool_padding: 'VALID' floors odd sizes (Caffe, torchvision, Keras); 'SAME' rounds them up (DPED's
  TensorFlow code: a 100x100 patch reaches block 4 at 13x13 instead of 12x12, block 5 at 7x7 instead of 6x6).
  """
  depth: int = 19
  taps: tuple[str, ...] = ("relu5_4",)
  pool_padding: str = "VALID"
  forms: str = "auto"  # how the layers compute (lle.nn.layers.LAYER_FORMS): the same function either way

  @nn.compact
  def __call__(self, x):
    names = layer_names(self.depth)
    unknown = [t for t in self.taps if t not in names]
    if unknown:
      raise ValueError(f"VGG-{self.depth} has no layer {unknown}; layers: {', '.join(names)}")
    last = max(names.index(t) for t in self.taps)
    out = {}
    block_widths = dict(zip(range(1, 6), WIDTHS))
    for name in names[:last + 1]:
      if name.startswith("conv"):
        width = block_widths[int(name[4])]
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), name=name, conv_general_dilated=conv_fn(self.forms))(x)
      elif name.startswith("relu"):
        x = jax.nn.relu(x)
      else:
        x = max_pool(x, 2, self.pool_padding, self.forms)
      if name in self.taps:
        out[name] = x
    return out


def frozen_features(params, *, depth: int, taps, pool_padding: str = "VALID", forms: str = "auto"):
  """`images -> {tap: features}` with the weights held constant: no gradient reaches them.

  Inside a jitted step, pass `params` in as an argument (e.g. from the train state) rather than closing
  over arrays: closed-over weights become compile-time constants that XLA tries to fold (minutes of
  compile time, and a copy in every executable)."""
  model = VGG(depth=depth, taps=tuple(taps), pool_padding=pool_padding, forms=forms)
  params = jax.tree.map(jnp.asarray, params)

  def features(x):
    return model.apply({"params": jax.lax.stop_gradient(params)}, x)

  return features

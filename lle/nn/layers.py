"""Layers shared by several methods."""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# How the layers below compute (`config.layer_forms`). "cpu": the exact re-expressions in this file and in
# `lle.losses` (phase-form and space-to-depth convolutions, the sub-pixel transposed convolution, CPU
# backward passes, max pooling as reshapes and selects, norms whose sums are matrix products, banded-matrix
# blurs), each measured faster on XLA's CPU backend and tested equal to the op it replaces. "plain": XLA's
# own ops (`lax.conv_general_dilated`, `reduce_window` pooling, reductions), which XLA hands to cuDNN and
# its fused kernels on a GPU, where the re-expressions were not measured and some do more work by
# construction (zero taps, extra copies). "auto": "cpu" on the CPU backend, "plain" on GPUs and TPUs.
LAYER_FORMS = ("auto", "cpu", "plain")


def resolve_forms(forms: str) -> str:
  """"cpu" or "plain": `forms`, with "auto" decided by the default backend."""
  if forms not in LAYER_FORMS:
    raise ValueError(f"layer forms {forms!r}; expected one of {LAYER_FORMS}")
  if forms == "auto":
    return "cpu" if jax.default_backend() == "cpu" else "plain"
  return forms


def layer_forms(config) -> str:
  """`config.layer_forms` resolved to "cpu" or "plain", once, where a method builds its networks and
  losses: every module and loss then gets it as an explicit (static) argument, so a jitted step's cache
  key holds it and no global switch can change what a cached trace computes."""
  name = config.get("layer_forms", "auto")
  if name not in LAYER_FORMS:
    raise ValueError(f"config.layer_forms={name!r}; expected one of {LAYER_FORMS}")
  return resolve_forms(name)


def conv_fn(forms: str):
  """The `conv_general_dilated` of an `nn.Conv` in these forms: `space_to_depth_conv` ("cpu") or XLA's."""
  return space_to_depth_conv if resolve_forms(forms) == "cpu" else jax.lax.conv_general_dilated


def _phase_taps(kernel_size: int, padding: int, phase: int):
  """Kernel taps and input offsets that produce output rows 2m + phase of a stride-2 transposed conv.

  A stride-2 transposed convolution computes y[o] = sum_{i, k: o = 2 i - padding + k} x[i] w[k]. For
  o = 2m + phase this is y[2m + phase] = sum_t x[m + t] w[phase + padding - 2t]: an ordinary
  correlation whose taps are every other kernel element. Returns (kernel indices, (pad_low, pad_high)).
  """
  offsets = [t for t in range(-kernel_size, kernel_size + 1) if 0 <= phase + padding - 2 * t < kernel_size]
  taps = [phase + padding - 2 * t for t in offsets]
  return taps, (-offsets[0], offsets[-1])


def _select_taps(kernel, rows, cols):
  """kernel[rows][:, cols] for static integer arrays `rows`, `cols` (index K: a zero tap) -> [*rows.shape,
  *cols.shape, C, F], by static slices (`_take`). A gather's gradient is a scatter into a zeroed kernel,
  slow on XLA's CPU backend; products with one-hot matrices are exact but 2-5x slower than slices on the
  larger kernels (train step, paired: iTMN demo 1.09x, paper 1.09x, tmgan demo 1.07x; neid and iqe demo,
  whose kernels are small, 0.98x, within noise)."""
  w = _take(kernel, tuple(int(i) for i in np.ravel(rows)), 0)
  w = _take(w, tuple(int(i) for i in np.ravel(cols)), 1)
  return w.reshape(*np.shape(rows), *np.shape(cols), *kernel.shape[2:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _take(x, index: tuple[int, ...], axis: int):
  """The entries `index` of x along `axis` (x.shape[axis]: a zero entry), concatenated slices. Its
  gradient sums, for each entry of x, the slices of the output gradient that took it: slices and adds,
  no scatter."""
  zero = jnp.zeros_like(jax.lax.slice_in_dim(x, 0, 1, axis=axis))
  return jnp.concatenate([jax.lax.slice_in_dim(x, i, i + 1, axis=axis) if i < x.shape[axis] else zero
                          for i in index], axis=axis)


def _take_bwd(index, axis, size, g):
  parts = []
  for entry in range(size):
    taken = [jax.lax.slice_in_dim(g, i, i + 1, axis=axis) for i, j in enumerate(index) if j == entry]
    parts.append(functools.reduce(jnp.add, taken) if taken else jnp.zeros_like(jax.lax.slice_in_dim(g, 0, 1, axis=axis)))
  return (jnp.concatenate(parts, axis=axis),)


_take.defvjp(lambda x, index, axis: (_take(x, index, axis), x.shape[axis]), _take_bwd)


# Output widths up to this take the stacked form of `conv_transpose_2x`. XLA's CPU convolution is slow on
# thin outputs (a U-Net's last layer has 3): one conv with 4x the outputs beats four thin ones, although it
# multiplies by the zero taps too (9/4 of the work for k = 4). Train step, images/s, paired rounds: iTMN
# demo 1.19x (F = 3 and 16 stacked; F = 3 alone 1.21x, up to 64: 1.10x), paper 1.20x (F = 3; all: 0.94x).
STACKED_MAX_FEATURES = 16


def conv_transpose_2x(x, kernel, bias=None, stacked: bool | None = None, forms: str = "auto"):
  """Stride-2 transposed convolution that doubles H and W; in sub-pixel form with the "cpu" forms.

  `kernel` has shape [k, k, in, out] in the scatter convention y[2i - p + k] += x[i] w[k] with
  p = (k - 2) / 2 (PyTorch's `ConvTranspose2d(k, stride=2, padding=p)`). Output phase (py, px) (rows
  2m + py, columns 2n + px) is an ordinary stride-1 convolution of x with every other kernel tap
  (`_phase_taps`). Unstacked: four such convolutions, interleaved. Stacked: one convolution over the
  union of the phases' windows whose 4 * out outputs are the phases (taps a phase does not use are zero),
  then depth-to-space. Both are the same function as the transposed convolution; their gradients are an
  order of magnitude faster than XLA's transposed convolution on CPU (no zero-dilated input).
  `stacked=None` stacks when out <= STACKED_MAX_FEATURES. The "plain" forms: XLA's transposed
  convolution (`lax.conv_transpose`: the input dilated by 2, correlated with the flipped kernel).
  """
  k = kernel.shape[0]
  if k % 2 or k < 2 or kernel.shape[1] != k:
    raise ValueError(f"conv_transpose_2x needs an even square kernel, got {kernel.shape[:2]}")
  padding = (k - 2) // 2
  if resolve_forms(forms) == "plain":
    pad = k - 1 - padding
    y = jax.lax.conv_transpose(x, kernel[::-1, ::-1].astype(x.dtype), (2, 2), ((pad, pad), (pad, pad)),
                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if bias is None else y + bias.astype(y.dtype)
  phases = [_phase_taps(k, padding, p) for p in (0, 1)]
  n, h, w, _ = x.shape
  features = kernel.shape[3]
  if stacked is None:
    stacked = features <= STACKED_MAX_FEATURES
  if stacked:
    low = max(pad[0] for _, pad in phases)
    high = max(pad[1] for _, pad in phases)
    # tap[j, p]: the kernel index at window row j of phase p; k (a zero row appended below) where unused
    tap = np.full((low + high + 1, 2), k)
    for p, (taps, (phase_low, _)) in enumerate(phases):
      tap[low - phase_low:low - phase_low + len(taps), p] = taps
    window = _select_taps(kernel, tap, tap)  # [rows, 2(py), cols, 2(px), in, out]
    window = window.transpose(0, 2, 4, 1, 3, 5).reshape(len(tap), len(tap), kernel.shape[2], 4 * features)
    y = _xla_conv(x, window.astype(x.dtype), ((low, high), (low, high)))
    y = y.reshape(n, h, w, 2, 2, features).transpose(0, 1, 3, 2, 4, 5)  # [N, H, 2(py), W, 2(px), C]
  else:
    rows = []
    for taps_y, pad_y in phases:
      cols = []
      for taps_x, pad_x in phases:
        sub = _select_taps(kernel, np.array(taps_y), np.array(taps_x))
        cols.append(_xla_conv(x, sub.astype(x.dtype), (pad_y, pad_x)))
      rows.append(jnp.stack(cols, axis=3))  # [N, H, W, 2(px), C]
    y = jnp.stack(rows, axis=2)  # [N, H, 2(py), W, 2(px), C]
  y = y.reshape(n, 2 * h, 2 * w, features)
  return y if bias is None else y + bias.astype(y.dtype)


class ConvTranspose2x(nn.Module):
  """Learned 2x upsampling by a k x k stride-2 transposed convolution (the papers' "deconvolution").

  Same parameters (kernel [k, k, in, out] + bias) and same function as a transposed convolution with
  padding (k - 2) / 2; computed as `conv_transpose_2x` in `forms` (see LAYER_FORMS).
  """
  features: int
  kernel_size: int = 4
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  forms: str = "auto"

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32) if self.use_bias else None
    return conv_transpose_2x(x, kernel, bias, forms=self.forms)


# Stride-1 convolutions with at most this many input or output channels (and a kernel wider than 1) run in
# phase form. Forward + backward of one layer, 2-core CPU, 8 x 64^2: 3 -> 16: 2.9x (3x3), 2.3x (9x9);
# 16 -> 3: 2.2x (3x3), 3.0x (9x9); 64 -> 3 (9x9) 2.8x; but 16 -> 16: 0.86x (3x3), 32 -> 32: 0.58x.
PHASE_MAX_THIN_CHANNELS = 4


def space_to_depth_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                        dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """`lax.conv_general_dilated` whose 2-D NHWC convolutions run where it is faster on XLA's CPU backend
  as convolutions on the space-to-depth input (the phase form, `_phase_conv`): stride-s convolutions
  (s > 1, the same on both axes) and stride-1 convolutions with a thin side (<= PHASE_MAX_THIN_CHANNELS
  input or output channels: images in or out). A stride-s convolution with more input channels than that
  keeps XLA's strided forward pass and takes its gradients from the phase form (`_strided_conv`). Other
  stride-1 convolutions go to `conv_stride1`; anything else (dilation, groups, other layouts) to
  `lax.conv_general_dilated` unchanged, so it is a drop-in `nn.Conv(conv_general_dilated=...)`.
  """
  nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  stride = window_strides[0]
  plain_2d = (lhs.ndim == 4 and tuple(window_strides) == (stride, stride) and feature_group_count == 1
              and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
              and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == nhwc)
  if not plain_2d:
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kwargs)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (stride, stride), padding)
  padding = tuple(map(tuple, padding))
  thin = min(rhs.shape[2], rhs.shape[3]) <= PHASE_MAX_THIN_CHANNELS
  if stride == 1 and not (thin and max(rhs.shape[:2]) > 1):
    if kwargs:
      return jax.lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                          precision=precision, **kwargs)
    return conv_stride1(lhs, rhs, padding, precision)
  if stride > 1 and rhs.shape[2] > PHASE_MAX_THIN_CHANNELS and not kwargs:
    return _strided_conv(lhs, rhs, stride, padding, precision)
  return _phase_conv(lhs, rhs, stride, padding, precision, **kwargs)


# Stride-s convolutions with more than PHASE_MAX_THIN_CHANNELS input channels: XLA's strided forward pass
# is faster than the phase form's (which pads and rearranges the input first), its gradients are not.
# Forward alone, 2-core CPU, XLA's / the phase form's time: 4x4/2 16 -> 32 at 8 x 64^2 0.57, 64 -> 128 at
# 2 x 256^2 0.61, 5x5/2 48 -> 128 at 2 x 25^2 0.62, 3x3/2 16 -> 32 at 2 x 256^2 0.44; but 1.4 at 3 -> 16
# (8 x 128^2), 1.3 at 3 -> 16 (2 x 512^2), 1.5 at iqe's 11x11/4 1 -> 12. Train step, paired: itmn demo
# 1.04x, paper 1.03x, tmgan demo 1.04x; tmgan paper, iqe demo and code, gladnet demo 1.00x (within noise).
@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _strided_conv(lhs, rhs, stride, padding, precision):
  return _xla_conv(lhs, rhs, padding, precision, stride)


def _strided_conv_bwd(stride, padding, precision, residuals, g):
  return jax.vjp(lambda x, k: _phase_conv(x, k, stride, padding, precision), *residuals)[1](g)


_strided_conv.defvjp(
    lambda lhs, rhs, *static: (_strided_conv(lhs, rhs, *static), (lhs, rhs)), _strided_conv_bwd)


def _phase_conv(lhs, rhs, stride, padding, precision, **kwargs):
  """The NHWC/HWIO convolution with `stride` and explicit `padding` computed on the space-to-depth input.

  With s x s input phases (s = the stride, or 2 for stride 1): input row s a + j is row a of
  input phase j. Stride s: output o reads padded rows s o + t, t < K, = row o + a of phase j for
  t = s a + j, so the [K, K, C, F] kernel is a stride-1 [A, A, s^2 C, F] kernel over the phases stacked on
  channels, A = ceil(K / s). Stride 1: output row s m + q reads rows s m + q + t, = row m + a of phase j
  for q + t = s a + j, so output phase q is a stride-1 convolution of the input phases too and all s^2
  output phases come from one [A, A, s^2 C, s^2 F] kernel, A = ceil((K + s - 1) / s), then depth-to-space.
  Taps a phase does not use are zero. The same function (and gradients); XLA's CPU convolutions are faster
  on it (wider channels, no strided access) although it multiplies by the zero taps too.
  """
  kernel_size = rhs.shape[:2]
  s = max(stride, 2)  # phases per axis
  q = s if stride == 1 else 1  # output phases per axis
  n, _, _, c = lhs.shape
  f = rhs.shape[3]
  outs, per_phase, taps, pads = [], [], [], []
  for size, k, (low, high) in zip(lhs.shape[1:3], kernel_size, padding):
    out = (size + low + high - k) // stride + 1
    outs.append(out)
    per_phase.append(-(-out // q))
    taps.append(-(-(k + q - 1) // s))
    pads.append((low, s * (per_phase[-1] + taps[-1] - 1) - size - low))  # s (rows + taps - 1) from row -low
  x = _pad_hw(lhs, pads)
  height, width = x.shape[1] // s, x.shape[2] // s
  x = x.reshape(n, height, s, width, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(
      n, height, width, s * s * c)  # channels ordered (row phase, column phase, channel)
  # tap[a, j, p]: the kernel index read at window row a, input phase j, output phase p; k (a zero row) if none
  tap = lambda k, a: np.array([[[s * a_ + j - p if 0 <= s * a_ + j - p < k else k for p in range(q)]
                                for j in range(s)] for a_ in range(a)])
  ty, tx = tap(kernel_size[0], taps[0]), tap(kernel_size[1], taps[1])
  w = _select_taps(rhs, ty, tx)  # [a, j, p, b, i, r, C, F]
  w = w.transpose(0, 3, 1, 4, 6, 2, 5, 7).reshape(taps[0], taps[1], s * s * c, q * q * f)
  y = (conv_stride1(x, w, ((0, 0), (0, 0)), precision) if not kwargs else
       jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    precision=precision, **kwargs))
  if q == 1:
    return y
  y = y.reshape(n, *per_phase, q, q, f).transpose(0, 1, 3, 2, 4, 5).reshape(n, q * per_phase[0], q * per_phase[1], f)
  return y[:, :outs[0], :outs[1]]


# Backward passes of stride-1 convolutions (`conv_stride1`) chosen for XLA's CPU backend, measured there on
# single layers (forward + backward or the one gradient, paired rounds):
# - Weight gradient in pieces (`_weight_grad_pieces`): the input padded beforehand, cut into groups of
#   images and bands of output rows (each with the kh - 1 input rows below it), one unpadded correlation
#   per piece, summed. Weight gradient alone, 3x3 C -> C:
#   batch <= 4, all images, bands of 16 rows: batch 2 at 100^2 x 64 1.70x (one band of the padded input:
#   1.17x), 128^2 x 32 2.33x (1.75x), 256^2 x 32 1.50x, 512^2 x 16 1.33x, 50^2 x 128 1.32x, 25^2 x 256
#   1.29x; batch 1 at 100^2 x 64 2.29x, batch 4 1.26x. Train step, paired, b2: gladnet code 1.05x, itmn
#   paper 1.04x, iqe code 1.04x, neid paper 1.03x, tmgan paper 1.00x.
#   batch 5-8 with >= 64 output rows, pairs of images, bands of 32 rows: batch 8 at 64^2 x 32 1.24x,
#   96^2 x 32 1.27x, 128^2 x 16 1.49x, 128^2 x 32 1.03x (all 8 images in bands of 16: 0.69x); smaller
#   images gain nothing (48^2 x 12 1.07x, 32^2 x 64 1.01x; iqe demo train step 0.97x). Train step: gladnet
#   demo 1.045x, neid demo 1.017x, itmn demo 1.00x. One device only (the batch seen here is the global one).
def _weight_grad_pieces(batch: int, out_rows: int):
  """(images per group, output rows per band) of the weight gradient's pieces, or None: XLA's."""
  if batch <= 4:
    return batch, 16
  if batch <= 8 and out_rows >= 64 and jax.device_count() == 1:  # pairs slice the batch axis, which
    return 2, 32  # is sharded over the devices when there are several
  return None


# - Input gradient as one matrix product with the kernel, then col2im, where the kernel has at least this
#   many times the elements of the output gradient (k * k * C >= ratio * N * Ho * Wo): XLA's transposes the
#   kernel every step. Input gradient alone: 3x3 512 -> 512 at 2 x 6^2 3.0x, 2 x 12^2 1.8x, 8 x 6^2 1.7x;
#   2x2 2048 -> 512 at 2 x 4^2 5.5x; but 3x3 256 -> 256 at 2 x 25^2 (ratio 1.8) 0.89x. Train step: iqe
#   code b2 (VGG-19 to relu5_4 on 100^2) 1.07x; iqe demo 1.03x, itmn demo 1.02x, paper 0.97x (noise).
INPUT_GRAD_DOT_MIN_RATIO = 4


def conv_stride1(x, kernel, padding, precision=None):
  """Stride-1 NHWC/HWIO convolution with explicit `padding` ((low, high) per spatial axis; negative crops),
  XLA's forward pass, and backward passes that are faster on XLA's CPU backend where they apply:
  - weight gradient (small batches, `_weight_grad_pieces`): the sum over groups of images and bands of
    output rows of unpadded correlations of the input padded beforehand, each piece with its rows. XLA's
    correlates the input, batch as channels, with the output gradient as a kernel as large as the image:
    slowly with few images or tall images (and more so when it has to pad);
  - input gradient (kernels >= INPUT_GRAD_DOT_MIN_RATIO x the output gradient: deep layers on small
    images): output gradient x kernel^T as one matrix product, [N Ho Wo, F] x [F, k k C], whose k x k
    shifted slices sum to the padded input's gradient (col2im). XLA's convolves with a flipped,
    transposed copy of the kernel, made every step.
  The same values and gradients either way (tests); elsewhere it is `lax.conv_general_dilated`. Part of the
  "cpu" forms (`space_to_depth_conv`), on whichever backend they are asked for."""
  n, h, w, c = x.shape
  kh, kw, _, f = kernel.shape
  out_rows, out_cols = h + sum(padding[0]) - kh + 1, w + sum(padding[1]) - kw + 1
  out_pixels = n * out_rows * out_cols
  pieces = _weight_grad_pieces(n, out_rows)
  input_grad_by_dot = kh * kw * c >= INPUT_GRAD_DOT_MIN_RATIO * out_pixels
  if pieces or input_grad_by_dot:
    return _conv_stride1(x, kernel, padding, precision, pieces, input_grad_by_dot)
  return _xla_conv(x, kernel, padding, precision)


def _pad_hw(x, padding, value=0.0):
  """NHWC x padded by ((low, high), (low, high)) on H and W with `value`; negative amounts crop."""
  (top, bottom), (left, right) = padding
  return jax.lax.pad(x, jnp.array(value, x.dtype), [(0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)])


def _xla_conv(x, kernel, padding, precision=None, stride=1):
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding, precision=precision,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_stride1(x, kernel, padding, precision, pieces, input_grad_by_dot):
  return _xla_conv(x, kernel, padding, precision)


def _conv_stride1_bwd(padding, precision, pieces, input_grad_by_dot, residuals, g):
  x, kernel = residuals
  kh, kw, c, f = kernel.shape
  if input_grad_by_dot:
    n, ho, wo, _ = g.shape
    cols = jax.lax.dot_general(g, kernel.reshape(kh * kw * c, f), (((3,), (1,)), ((), ())), precision=precision)
    cols = cols.reshape(n, ho, wo, kh, kw, c)
    padded = sum(_pad_hw(cols[:, :, :, i, j], ((i, kh - 1 - i), (j, kw - 1 - j)))
                 for i in range(kh) for j in range(kw))  # the gradient of the padded input
    dx = _pad_hw(padded, [(-low, -high) for low, high in padding]).astype(x.dtype)  # crops the padding
  else:
    dx = jax.vjp(lambda x: _xla_conv(x, kernel, padding, precision), x)[1](g)[0]
  if pieces:
    padded_x = _pad_hw(x, padding)
    group, band = pieces
    parts = []
    for first in range(0, g.shape[0], group):
      for top in range(0, g.shape[1], band):
        x_piece = padded_x[first:first + group, top:top + band + kh - 1]
        parts.append(jax.vjp(lambda k, x_piece=x_piece: _xla_conv(x_piece, k, ((0, 0), (0, 0)), precision), kernel)[1](
            g[first:first + group, top:top + band])[0])
    dkernel = functools.reduce(jnp.add, parts)
  else:
    dkernel = jax.vjp(lambda k: _xla_conv(x, k, padding, precision), kernel)[1](g)[0]
  return dx, dkernel


_conv_stride1.defvjp(
    lambda x, kernel, *static: (_conv_stride1(x, kernel, *static), (x, kernel)), _conv_stride1_bwd)


def max_pool(x, size: int, padding: str = "VALID", forms: str = "auto"):
  """`nn.max_pool(x, (size, size), strides=(size, size), padding=padding)` on NHWC: non-overlapping
  windows, the same values and the same gradient (all of it to the first maximum of a window in row-major
  order, as XLA's select-and-scatter routes it); with the "cpu" forms as reshapes and elementwise selects.
  XLA's CPU backend expands the select-and-scatter of `nn.max_pool`'s gradient into a scatter with
  full-size index arrays. "plain": `nn.max_pool` itself (`reduce_window`).
  """
  if resolve_forms(forms) == "plain":
    return nn.max_pool(x, (size, size), strides=(size, size), padding=padding)
  (low_h, high_h), (low_w, high_w) = jax.lax.padtype_to_pads(x.shape[1:3], (size, size), (size, size), padding)
  x = _pad_hw(x, ((low_h, high_h), (low_w, high_w)), -jnp.inf)
  n, h, w, c = x.shape
  x = x[:, :h - h % size, :w - w % size]  # VALID drops the rows and columns no window covers
  return _window_max(x.reshape(n, h // size, size, w // size, size, c))


@jax.custom_vjp
def _window_max(windows):
  """[N, H, s, W, s, C] -> [N, H, W, C], the max over each s x s window."""
  return windows.max(axis=(2, 4))


def _window_max_fwd(windows):
  out = _window_max(windows)
  return out, (windows, out)


def _window_max_bwd(residuals, g):
  windows, out = residuals
  s = windows.shape[2]
  taken = jnp.zeros(out.shape, bool)
  rows = []
  for a in range(s):  # row-major scan: the first maximum takes the gradient
    cols = []
    for b in range(s):
      pick = (windows[:, :, a, :, b] == out) & ~taken
      taken = taken | pick
      cols.append(jnp.where(pick, g, jnp.zeros_like(g)))
    rows.append(jnp.stack(cols, axis=3))
  return (jnp.stack(rows, axis=2),)


_window_max.defvjp(_window_max_fwd, _window_max_bwd)


def _block(rows: int) -> int:
  """The largest divisor of `rows` up to 256: the block each matrix product of `sum_rows` sums."""
  return max(d for d in range(1, min(rows, 256) + 1) if rows % d == 0)


def sum_rows(x, forms: str = "auto"):
  """x [G, R, C] -> [G, C], the sum over R. "plain" forms: XLA's reduction. "cpu" forms: batched matrix
  products, ones [1, L] x [L, C] per block of L <= 256 rows, then the sum of the block sums. XLA's CPU
  reduction of channels-last arrays over their leading axes is up to 4x slower for 16-128 channels; one
  long product accumulates in sequence and loses accuracy (relative error 8e-6 over 131,072 rows, vs 1e-7
  blocked, as XLA's). Where R has no divisor from 32 to 256 it is XLA's reduction. HIGHEST: full float32
  on accelerators too (no TF32). Its gradient is `broadcast_rows` and the other way round, so neither
  pass of a normalisation layer runs an XLA reduction."""
  if resolve_forms(forms) == "plain":
    return x.sum(axis=1)
  return _sum_rows(x, x.shape[1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _sum_rows(x, rows: int):
  groups, _, channels = x.shape
  block = _block(rows)
  if block < 32:
    return x.sum(axis=1)
  blocks = x.reshape(groups, rows // block, block, channels)
  ones = jnp.ones((groups, rows // block, 1, block), x.dtype)
  sums = jax.lax.dot_general(ones, blocks, (((3,), (2,)), ((0, 1), (0, 1))), precision=jax.lax.Precision.HIGHEST)
  return sums[:, :, 0].sum(axis=1)


def broadcast_rows(v, rows: int, forms: str = "auto"):
  """v [G, C] -> [G, rows, C]; with the "cpu" forms its gradient is `sum_rows`'s matrix products."""
  if resolve_forms(forms) == "plain":
    return jnp.broadcast_to(v[:, None], (v.shape[0], rows, v.shape[1]))
  return _broadcast_rows(v, rows)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _broadcast_rows(v, rows: int):
  return jnp.broadcast_to(v[:, None], (v.shape[0], rows, v.shape[1]))


_sum_rows.defvjp(lambda x, rows: (_sum_rows(x, rows), None), lambda rows, _, g: (_broadcast_rows(g, rows),))
_broadcast_rows.defvjp(lambda v, rows: (_broadcast_rows(v, rows), None),
                       lambda rows, _, g: (_sum_rows(g, g.shape[1]),))


class BatchNorm(nn.Module):
  """`flax.linen.BatchNorm` over every axis but the last, with its parameters, statistics, names and
  arithmetic (float32 statistics, variance E[x^2] - E[x]^2 clipped at 0, running averages
  momentum * old + (1 - momentum) * new, none updated while initialising), computed with per-channel
  matrix products instead of XLA reductions (`sum_rows`): the statistics and the backward pass's sums
  were a fifth of an iTMN train step on CPU ("cpu" forms; "plain": XLA's reductions)."""
  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  forms: str = "auto"

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    rows = x.reshape(1, -1, features)
    if self.use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      stats = rows.astype(jnp.promote_types(x.dtype, jnp.float32))
      count = rows.shape[1]
      mean = sum_rows(stats, self.forms)[0] / count
      var = jnp.maximum(0.0, sum_rows(stats * stats, self.forms)[0] / count - mean * mean)
      if not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    mul = jax.lax.rsqrt(var + self.epsilon) * scale
    per_channel = lambda v: broadcast_rows(v[None], rows.shape[1], self.forms)
    y = (rows - per_channel(mean)) * per_channel(mul) + per_channel(bias)
    return y.reshape(x.shape)


class InstanceNorm(nn.Module):
  """`flax.linen.InstanceNorm` on NHWC (statistics per image and channel over H, W), with its parameters,
  names and arithmetic (float32 statistics, variance E[x^2] - E[x]^2 clipped at 0), computed with the
  matrix-product sums of `sum_rows` as `BatchNorm` is (in `forms`)."""
  epsilon: float = 1e-6
  forms: str = "auto"

  @nn.compact
  def __call__(self, x):
    n, h, w, features = x.shape
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    rows = x.reshape(n, h * w, features)
    stats = rows.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = sum_rows(stats, self.forms) / (h * w)
    var = jnp.maximum(0.0, sum_rows(stats * stats, self.forms) / (h * w) - mean * mean)
    mul = jax.lax.rsqrt(var + self.epsilon) * scale
    y = (rows - broadcast_rows(mean, h * w, self.forms)) * broadcast_rows(mul, h * w, self.forms)
    return (y.reshape(1, n * h * w, features) + broadcast_rows(bias[None], n * h * w, self.forms)).reshape(x.shape)


def initializer(name: str):
  """Kernel initialiser by config name: 'normal_0.02' (DCGAN/pix2pix), 'glorot_uniform' (TensorFlow's
  default), 'he_gaussian' (He et al. 2015 sec. 2.2: zero-mean Gaussian, std sqrt(2 / fan_in), fan_in =
  k * k * in_channels, not truncated), 'he_normal' (Keras' truncated form of it), 'lecun_normal' (Flax
  default)."""
  if name.startswith("normal_"):
    return nn.initializers.normal(stddev=float(name.split("_", 1)[1]))
  table = {
      "glorot_uniform": nn.initializers.glorot_uniform(),
      "he_gaussian": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
      "he_normal": nn.initializers.he_normal(),
      "lecun_normal": nn.initializers.lecun_normal(),
  }
  if name not in table:
    raise ValueError(f"unknown initializer {name!r}; expected 'normal_<std>' or one of {sorted(table)}")
  return table[name]

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle.nn import layers
from lle.nn.discriminator import ConvFCDiscriminator
from lle.nn.layers import (PHASE_MAX_THIN_CHANNELS, BatchNorm, ConvTranspose2x, conv_transpose_2x, max_pool,
                            space_to_depth_conv)
from lle.nn.unet import UNet


def scatter_conv_transpose(x, w, stride, padding):
  """Reference transposed convolution by its definition: y[s*i - p + k] += x[i] w[k] (float64)."""
  n, h, wd, _ = x.shape
  k = w.shape[0]
  full = np.zeros((n, stride * (h - 1) + k, stride * (wd - 1) + k, w.shape[3]))
  for i in range(h):
    for j in range(wd):
      full[:, stride * i:stride * i + k, stride * j:stride * j + k] += np.einsum("nc,abcd->nabd", x[:, i, j], w)
  return full[:, padding:padding + stride * h, padding:padding + stride * wd]


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_subpixel_transposed_conv_matches_definition(k, stacked):
  rng = np.random.default_rng(k)
  x, w = rng.normal(size=(2, 5, 7, 3)), rng.normal(size=(k, k, 3, 4))
  got = conv_transpose_2x(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), stacked=stacked)
  np.testing.assert_allclose(got, scatter_conv_transpose(x, w, 2, (k - 2) // 2), atol=2e-5)


def _compiled_grads(fns, x, w):
  """Gradients of sum(sin(f(x, w))) over x and w for each f, each compiled as one program: run op by op,
  every operation of every shape compiles on its own (10-18 s per case on 2 cores), and the layers
  run compiled in training."""
  loss = lambda f: (lambda x, w: jnp.sum(jnp.sin(f(x, w))))
  return [jax.jit(jax.grad(loss(f), argnums=(0, 1)))(x, w) for f in fns]


@pytest.mark.parametrize("stacked", [False, True])
def test_subpixel_matches_xla_transposed_conv_gradients(stacked):
  """Same function, so the same gradients as XLA's own transposed convolution (PyTorch convention)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(4, 4, 3, 5)), jnp.float32)

  def xla(x, w):  # torch ConvTranspose2d(4, 2, 1) == dilated conv with the flipped kernel, padding k-1-p
    return jax.lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  g_ours, g_xla = _compiled_grads((functools.partial(conv_transpose_2x, stacked=stacked), xla), x, w)
  for a, b in zip(g_ours, g_xla):
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("stride, kernel, size, padding", [
    (2, 4, (16, 12), ((1, 1), (1, 1))),  # the U-Net encoders' and discriminators' layers
    (2, 3, (15, 17), "SAME"), (2, 5, (12, 9), ((2, 2), (2, 2))), (2, 4, (13, 9), "VALID"),  # odd kernel / sizes
    (4, 9, (23, 21), "SAME"), (3, 4, (8, 8), ((1, 2), (0, 1))),  # iqe's stride 4; asymmetric padding
    (1, 9, (12, 10), "SAME"), (1, 3, (7, 9), "SAME"), (1, 4, (9, 8), "VALID"),  # stride 1, thin side: phases
    (1, 5, (6, 7), ((1, 3), (0, 2)))])
@pytest.mark.parametrize("channels", [(3, 5), (6, 2)])  # thin input (images in), thin output (images out)
def test_space_to_depth_conv_is_the_strided_conv_with_its_gradients(stride, kernel, size, padding, channels):
  rng = np.random.default_rng(stride * 100 + kernel)
  x = jnp.asarray(rng.normal(size=(2, *size, channels[0])), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, *channels)), jnp.float32)
  dims = ("NHWC", "HWIO", "NHWC")
  xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=dims)
  ours = lambda x, w: space_to_depth_conv(x, w, (stride, stride), padding, dimension_numbers=dims)
  np.testing.assert_allclose(jax.jit(ours)(x, w), jax.jit(xla)(x, w), atol=5e-5)  # outputs up to ~25: float32 sums
  # Strided layers with more than PHASE_MAX_THIN_CHANNELS inputs keep XLA's strided forward pass (their
  # gradients still come from the phase form); thin ones run the phase form's stride-1 convolutions only.
  if stride > 1:
    strided_forward = f"window_strides=({stride}, {stride})" in str(jax.make_jaxpr(ours)(x, w))
    assert strided_forward == (channels[0] > PHASE_MAX_THIN_CHANNELS)
  for a, b in zip(*_compiled_grads((ours, xla), x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=3e-4)  # gradients up to ~13: sums of 486 float32 terms


def test_select_taps_is_indexing_with_a_zero_tap_and_its_gradient():
  """Repeated taps (their gradients add up), zero taps (index K) and taps never taken (zero gradient)."""
  rng = np.random.default_rng(0)
  kernel = jnp.asarray(rng.normal(size=(5, 4, 3, 2)), jnp.float32)
  rows, cols = np.array([[4, 0], [2, 5], [0, 1]]), np.array([3, 4, 3, 1])
  padded = lambda k: jnp.pad(k, ((0, 1), (0, 1), (0, 0), (0, 0)))
  reference = lambda k: padded(k)[rows][:, :, cols]  # a gather, and a scatter-add for its gradient
  np.testing.assert_array_equal(layers._select_taps(kernel, rows, cols), reference(kernel))
  weights = jnp.asarray(rng.normal(size=(3, 2, 4, 3, 2)), jnp.float32)
  grad = lambda f: jax.grad(lambda k: jnp.sum(f(k) * weights))(kernel)
  np.testing.assert_allclose(grad(lambda k: layers._select_taps(k, rows, cols)), grad(reference), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch, size, channels, kernel, padding", [
    # small batches: the weight gradient in bands of 16 output rows from the padded input (one band up to 16)
    (2, (9, 11), 8, 3, "SAME"), (1, (9, 11), 8, 9, "SAME"), (4, (9, 11), 8, 4, "SAME"),  # 4x4 SAME: (1, 2)
    (3, (9, 11), 8, 3, ((2, 0), (1, 3))), (2, (40, 11), 8, 5, ((-1, 2), (2, 1))),  # negative crops the input
    (2, (37, 11), 8, 3, "SAME"), (1, (35, 6), 4, 2, "VALID"), (2, (16, 5), 8, 4, "SAME"),  # 3 bands; 2; 1
    (7, (70, 5), 4, 3, "SAME"),  # batch 5-8, >= 64 rows: pairs of images (the last alone), bands of 32 rows
    # small images, many channels: the input gradient by a matrix product (and, batch <= 4, both)
    (8, (3, 4), 64, 3, "SAME"), (8, (5, 4), 96, 2, "VALID"), (2, (3, 3), 64, 3, ((2, 0), (-1, 1)))])
def test_conv_stride1_is_xla_conv_with_its_gradients(batch, size, channels, kernel, padding, monkeypatch):
  """XLA's values, and both gradients equal to XLA's, for each backward form of `conv_stride1`."""
  monkeypatch.setattr(layers.jax, "device_count", lambda: 1)  # pairs of images: one device only
  rng = np.random.default_rng(kernel)
  x = jnp.asarray(rng.normal(size=(batch, *size, channels)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, channels, 6)), jnp.float32)
  dims = ("NHWC", "HWIO", "NHWC")
  xla = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dims)
  ours = lambda x, w: space_to_depth_conv(x, w, (1, 1), padding, dimension_numbers=dims)
  assert "custom_vjp_call" in str(jax.make_jaxpr(ours)(x, w))  # one of the CPU backward forms is the one tested
  np.testing.assert_allclose(jax.jit(ours)(x, w), jax.jit(xla)(x, w), atol=5e-5)
  for a, b in zip(*_compiled_grads((ours, xla), x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-4)


def test_conv_stride1_chooses_xla_for_large_batches_of_wide_images(monkeypatch):
  x, w = jnp.zeros((16, 70, 11, 8)), jnp.zeros((3, 3, 8, 6))
  def custom(x):  # a new function each time: traces are cached per function and shapes
    conv = functools.partial(layers.conv_stride1, padding=((1, 1), (1, 1)))
    return "custom_vjp_call" in str(jax.make_jaxpr(conv)(x, w))
  assert jax.device_count() == 8 and not custom(x[:8, :64]) and custom(x[:4, :9])  # 8 devices: no pairs
  monkeypatch.setattr(layers.jax, "device_count", lambda: 1)
  assert not custom(x) and not custom(x[:8, :63])  # more than 8 images; 8 images of fewer than 64 rows
  assert custom(x[:8, :64]) and custom(x[:4, :9])


def test_space_to_depth_conv_in_nn_conv_keeps_names_and_shapes():
  """A drop-in `conv_general_dilated`: the same parameters (checkpoints load either way) and outputs for
  stride 2, stride 1 (phase form: 4 input channels) and grouped convolutions (passed through to XLA)."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  for kwargs in [dict(strides=2, padding=((1, 1), (1, 1))), dict(strides=1, padding="SAME"),
                 dict(strides=2, padding="SAME", feature_group_count=2)]:
    plain = nn.Conv(6, (4, 4), **kwargs)
    variables = plain.init(jax.random.key(1), x)
    fast = nn.Conv(6, (4, 4), conv_general_dilated=space_to_depth_conv, **kwargs)
    assert jax.tree.map(jnp.shape, fast.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(fast.apply(variables, x), plain.apply(variables, x), atol=1e-5)


@pytest.mark.parametrize("size, shape, padding", [
    (2, (2, 8, 6, 3), "VALID"), (2, (2, 7, 9, 3), "SAME"), (2, (2, 7, 9, 3), "VALID"), (3, (1, 10, 8, 2), "SAME")])
def test_max_pool_values_and_gradient_equal_flax_max_pool_with_ties(size, shape, padding):
  """Ties (post-ReLU zeros, repeated values) are where a max-pool gradient can differ: all of it must go to
  the window's first maximum in row-major order, as XLA's select-and-scatter sends it."""
  x = jnp.asarray(np.random.default_rng(size).normal(size=shape), jnp.float32)
  x = jnp.where(x > 0.3, jnp.round(x), 0.0)  # many equal values per window
  reference = lambda x: nn.max_pool(x, (size, size), strides=(size, size), padding=padding)
  ours = lambda x: max_pool(x, size, padding)
  y, vjp = jax.vjp(ours, x)
  y_ref, vjp_ref = jax.vjp(reference, x)
  np.testing.assert_array_equal(y, y_ref)
  cotangent = jnp.asarray(np.random.default_rng(0).normal(size=y.shape), jnp.float32)
  np.testing.assert_array_equal(vjp(cotangent)[0], vjp_ref(cotangent)[0])
  assert int((vjp(cotangent)[0] != 0).sum()) == int(np.prod(y.shape))  # one input per window takes it


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_equals_flax_batch_norm(train):
  """Same variables (names, shapes, initial values), outputs, gradients and running statistics."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 6, 5, 8)) * 3 + 1, jnp.float32)
  ours, flax_bn = (cls(use_running_average=not train, momentum=0.9, epsilon=1e-3) for cls in (BatchNorm, nn.BatchNorm))
  initial = flax_bn.init(jax.random.key(0), x)
  chex.assert_trees_all_equal(ours.init(jax.random.key(0), x), initial)
  stats = {"mean": jnp.linspace(0, 1, 8), "var": jnp.linspace(1, 2, 8)}
  params = {"scale": jnp.linspace(0.5, 2, 8), "bias": jnp.linspace(-1, 1, 8)}

  def loss(module):
    def f(params, x):
      y, updates = module.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(y)), (y, updates)
    return jax.grad(f, argnums=(0, 1), has_aux=True)(params, x)

  chex.assert_trees_all_close(loss(ours), loss(flax_bn), rtol=1e-5, atol=1e-5)
  if train:  # the statistics moved
    assert float(jnp.abs(loss(ours)[1][1]["batch_stats"]["mean"] - stats["mean"]).max()) > 0.01


@pytest.mark.parametrize("shape", [(2, 16, 16, 8), (3, 5, 7, 4), (1, 64, 64, 16)])  # blocked / XLA's sums
def test_instance_norm_equals_flax_instance_norm(shape):
  """Same variables, outputs and gradients (input and parameters) as `flax.linen.InstanceNorm`."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=shape) * 3 + 1, jnp.float32)
  ours, flax_in = layers.InstanceNorm(epsilon=1e-3), nn.InstanceNorm(epsilon=1e-3)
  chex.assert_trees_all_equal(ours.init(jax.random.key(0), x), flax_in.init(jax.random.key(0), x))
  c = shape[-1]
  params = {"scale": jnp.linspace(0.5, 2, c), "bias": jnp.linspace(-1, 1, c)}
  loss = lambda module: jax.jit(jax.value_and_grad(  # compiled whole (see _compiled_grads)
      lambda p, x: jnp.sum(jnp.sin(module.apply({"params": p}, x))), argnums=(0, 1)))(params, x)
  chex.assert_trees_all_close(loss(ours), loss(flax_in), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("rows", [131_072 + 100, 100, 131_071])  # blocks of 204, of 100; a prime: XLA's sum
def test_batch_norm_channel_sums_are_as_accurate_as_a_tree_reduction(rows):
  """A single long product accumulates in sequence: relative error ~8e-6 at 131,072 rows, which the
  E[x^2] - E[x]^2 variance and one-vs-eight-device runs notice; blocked sums stay near float32's 1e-7."""
  x = np.random.default_rng(rows).normal(size=(rows, 16)).astype(np.float32) + 3.0
  exact = x.astype(np.float64).sum(0)
  got = np.asarray(jax.jit(lambda x: layers.sum_rows(x[None])[0])(x), np.float64)
  assert np.abs(got - exact).max() / np.abs(exact).max() < 5e-7


def test_conv_transpose_module_parameters():
  variables = ConvTranspose2x(7, 4).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  assert variables["params"]["kernel"].shape == (4, 4, 3, 7)
  assert variables["params"]["bias"].shape == (7,)


def test_unet_shapes_range_and_parameter_count():
  features, k = (4, 8, 16), 4
  net = UNet(features=features, kernel_size=k)
  x = jax.random.uniform(jax.random.key(0), (2, 32, 48, 3))
  variables = net.init(jax.random.key(1), x, train=False)
  y = net.apply(variables, x, train=False)
  assert y.shape == (2, 32, 48, 3)
  assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0  # sigmoid output
  # Encoder: conv in->f without bias + BN(f) scale and shift; decoder: deconv over [previous, skip]
  # channels, then BN on all but the last, which has a bias instead.
  expected, cin = 0, 3
  for f in features:
    expected += k * k * cin * f + 2 * f
    cin = f
  ups = list(features[-2::-1]) + [3]
  for i, f in enumerate(ups):
    cin_up = features[-1] if i == 0 else ups[i - 1] + features[-1 - i]
    expected += k * k * cin_up * f + (2 * f if i < len(ups) - 1 else f)
  count = sum(p.size for p in jax.tree.leaves(variables["params"]))
  assert count == expected
  with pytest.raises(ValueError, match="must divide by 8"):
    net.apply(variables, jnp.zeros((1, 30, 32, 3)), train=False)


def test_discriminator_gives_one_logit_per_image():
  net = ConvFCDiscriminator(conv_features=(4, 8), fc_features=(6,))
  x = jnp.zeros((3, 32, 32, 3))
  variables = net.init(jax.random.key(0), x, train=False)
  assert net.apply(variables, x, train=False).shape == (3,)
  assert variables["params"]["Dense_0"]["kernel"].shape == (8 * 8 * 8, 6)

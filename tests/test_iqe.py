"""IQE / DPED: networks against the official layer list, the losses by hand, the discriminator's swap,
exact tiled inference with instance norm, and one tiny run through the trainer."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import losses, methods, train, weights
from lle.methods import iqe
from lle.nn import vgg as vgg_lib
from tests.conftest import load_config


def _conv(k, cin, cout):
  return k * k * cin * cout + cout  # kernel + bias


def _count(tree):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def _dped_generator_layers():
  """(k, in, out) of W1..W12 in aiff22/DPED models.py `resnet`, and the channels of its 8 norms."""
  convs = [(9, 3, 64)] + [(3, 64, 64)] * 8 + [(3, 64, 64)] * 2 + [(9, 64, 3)]
  return convs, [64] * 8


@pytest.mark.parametrize("variant", ["code", "paper", "paper_bn"])
def test_generator_parameter_count_from_the_layer_list(variant):
  convs, norms = _dped_generator_layers()
  expected = sum(_conv(*c) for c in convs) + sum(2 * n for n in norms)  # scale + shift (or BN scale + bias)
  assert expected == 401_475
  config = load_config(f"configs/iqe.py:{variant}")
  variables = jax.eval_shape(lambda: iqe.generator(config).init(jax.random.key(0), jnp.zeros((1, 100, 100, 3))))
  assert _count(variables["params"]) == expected
  assert len(variables["params"]) == 12 + 8
  # Batch norm also keeps running mean and variance (not trained): 2 x 64 per norm.
  assert _count(variables.get("batch_stats", {})) == (2 * 64 * 8 if variant == "paper_bn" else 0)


def test_discriminator_flattens_128x7x7_at_100x100_and_counts_its_parameters():
  config = load_config("configs/iqe.py")
  variables = jax.eval_shape(lambda: iqe.discriminator(config).init(jax.random.key(0), jnp.zeros((2, 100, 100, 1))))
  params = variables["params"]
  assert params["fc"]["kernel"].shape == (128 * 7 * 7, 1024)
  assert params["out"]["kernel"].shape == (1024, 2)
  convs = [(11, 1, 48), (5, 48, 128), (3, 128, 192), (3, 192, 192), (3, 192, 128)]
  expected = sum(_conv(*c) for c in convs) + 2 * (128 + 192 + 192 + 128) + (6272 * 1024 + 1024) + (1024 * 2 + 2)
  assert _count(params) == expected == 7_361_122
  assert "norm1" not in params  # the first conv has no norm


def test_dped_colour_kernel_against_hand_computation():
  """gauss_kernel(21, 3): the N(0, 1) mass of 21 equal bins spanning [-3 - 1/6, 3 + 1/6], sqrt(outer),
  normalised."""
  phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
  edges = [-3 - 1 / 6 + i * (6 + 1 / 3) / 21 for i in range(22)]
  k1 = [phi(edges[i + 1]) - phi(edges[i]) for i in range(21)]
  total = sum(math.sqrt(a * b) for a in k1 for b in k1)
  kernel = losses.color_kernel("dped")
  assert kernel.shape == (21, 21) and kernel.sum() == pytest.approx(1.0, abs=1e-6)
  for i, j in ((10, 10), (0, 0), (10, 3), (5, 17)):
    assert kernel[i, j] == pytest.approx(math.sqrt(k1[i] * k1[j]) / total, rel=1e-5)
  # Near a Gaussian of std sqrt(2) * 21 / (6 + 1/3) = 4.69 pixels (the square root widens it), cut at the
  # 21x21 border, which the normalisation makes up for (+4.5 % at the centre):
  assert kernel[10, 10] == pytest.approx(1 / (2 * math.pi * (math.sqrt(2) * 21 / (19 / 3)) ** 2), rel=0.06)


def test_paper_colour_kernel_is_its_formula():
  """G(k, l) = A exp(-k^2 / (2 sigma) - l^2 / (2 sigma)), A = 0.053, sigma = 3: A is 1 / (6 pi) to 0.1 %."""
  kernel = losses.color_kernel("paper")
  assert kernel[10, 10] == pytest.approx(0.053, rel=2e-3)
  assert kernel[10, 13] == pytest.approx(0.053 * math.exp(-9 / 6), rel=2e-3)
  assert kernel[7, 13] == pytest.approx(0.053 * math.exp(-18 / 6), rel=2e-3)


def test_colour_loss_blurs_both_and_divides_by_two_batches():
  kernel = np.zeros((3, 3), np.float32)
  kernel[1, 1] = 1.0  # identity blur: the loss is the plain sum of squares / (2 N)
  a = jnp.zeros((2, 4, 4, 3))
  b = a.at[0, 1, 1, 0].set(0.5).at[1, 2, 2, 2].set(1.0)
  assert float(losses.color_loss(a, b, kernel=kernel)) == pytest.approx((0.25 + 1.0) / 4)
  # A box blur spreads a single 1 into nine 1/9s: sum of squares 9 / 81.
  box = np.full((3, 3), 1 / 9, np.float32)
  c = a.at[0, 2, 2, 1].set(1.0)
  assert float(losses.color_loss(a, c, kernel=box, sum_scale=1.0)) == pytest.approx(1 / 9 / 2, rel=1e-5)


@pytest.mark.parametrize("form", ["dped", "paper"])
def test_separable_blur_equals_the_2d_depthwise_convolution(form):
  """`blur` runs the colour kernels as two 1-D passes: the same as TF's depthwise_conv2d 'SAME' with the
  21x21 kernel, borders included (an image smaller than the kernel: every output pixel touches padding)."""
  import jax
  kernel = losses.color_kernel(form)
  images = jnp.asarray(np.random.default_rng(0).random((2, 17, 30, 3)), jnp.float32)
  k2d = jnp.tile(jnp.asarray(kernel)[:, :, None, None], (1, 1, 1, 3))
  direct = jax.lax.conv_general_dilated(images, k2d, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=3, precision="highest")
  np.testing.assert_allclose(np.asarray(losses.blur(images, kernel)), np.asarray(direct), atol=1e-6, rtol=1e-5)
  lopsided = kernel.copy()
  lopsided[0, 0] += 0.01  # not separable: the 2-D convolution
  direct = jax.lax.conv_general_dilated(images, k2d.at[0, 0].add(0.01), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3,
                                        precision="highest")
  np.testing.assert_allclose(np.asarray(losses.blur(images, lopsided)), np.asarray(direct), atol=1e-6, rtol=1e-5)


def test_blur_even_separable_kernel_pads_as_same_and_its_gradient_is_the_convolutions():
  """'SAME' with an even kernel pads one pixel less before than after; the banded matrix products of
  `blur` must place the window as the depthwise convolution does, and give its gradient."""
  import jax
  taps = np.array([0.1, 0.4, 0.3, 0.2])
  kernel = np.outer(taps, taps).astype(np.float32)
  images = jnp.asarray(np.random.default_rng(1).random((2, 7, 9, 3)), jnp.float32)
  k2d = jnp.tile(jnp.asarray(kernel)[:, :, None, None], (1, 1, 1, 3))
  direct = lambda x: jax.lax.conv_general_dilated(x, k2d, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                                  feature_group_count=3, precision="highest")
  np.testing.assert_allclose(np.asarray(losses.blur(images, kernel)), np.asarray(direct(images)), atol=1e-6, rtol=1e-5)
  weights = jnp.asarray(np.random.default_rng(2).random(images.shape), jnp.float32)
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * weights))(images)
  np.testing.assert_allclose(np.asarray(grad(lambda x: losses.blur(x, kernel))), np.asarray(grad(direct)),
                             atol=1e-6, rtol=1e-5)


def test_total_variation_by_hand():
  x = np.zeros((1, 3, 3, 1), np.float32)
  x[0, 1, 1, 0] = 1.0
  # dx: H x (W-1) = 6 values, two of them +-1; dy the same: mean 2/6 each.
  assert float(losses.total_variation(jnp.asarray(x), form="dped")) == pytest.approx(2 / 6 + 2 / 6)
  # paper: d_x + d_y on the 2x2 pixels that have both. By hand: d_x[r, c] = x[r, c+1] - x[r, c] gives
  # rows [0, 0], [1, -1]; d_y[r, c] = x[r+1, c] - x[r, c] gives rows [0, 1], [0, -1]; their sum
  # [[0, 1], [1, -2]] has norm sqrt(6), over C H W = 9.
  assert float(losses.total_variation(jnp.asarray(x), form="paper")) == pytest.approx(math.sqrt(6) / 9, rel=1e-5)


def test_discriminator_sees_the_target_where_swapped_and_learns_the_matching_label():
  enhanced = jnp.full((4, 2, 2, 3), 0.2)
  target = jnp.full((4, 2, 2, 3), 0.8)
  swap = jnp.asarray([1.0, 0.0, 0.0, 1.0])
  grey = iqe.discriminator_input(enhanced, target, swap)
  assert grey.shape == (4, 2, 2, 1)
  np.testing.assert_allclose(np.asarray(grey[:, 0, 0, 0]), [0.8 * 0.9999, 0.2 * 0.9999, 0.2 * 0.9999, 0.8 * 0.9999],
                             rtol=1e-6)
  # Labels: swap 1 (target photo) -> class 0; the loss is a sum over the batch.
  logits = jnp.asarray([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 0.0]])
  p = jax.nn.softmax(logits)
  expected = -(math.log(p[0, 0]) + math.log(p[1, 1]) + math.log(p[2, 1]) + math.log(p[3, 0]))
  assert float(losses.dped_cross_entropy(logits, swap)) == pytest.approx(expected, rel=1e-6)


def test_texture_forms():
  logits = jnp.asarray([[1.0, 0.0], [0.0, 3.0]])
  p = np.asarray(jax.nn.softmax(logits))
  assert float(losses.texture_loss(logits, form="dped")) == pytest.approx(np.log(p[:, 1]).sum(), rel=1e-6)
  assert float(losses.texture_loss(logits, form="paper")) == pytest.approx(-np.log(p[:, 0]).sum(), rel=1e-6)


def test_variants_differ_as_documented():
  code, paper, paper_bn = (load_config(f"configs/iqe.py{v}") for v in ("", ":paper", ":paper_bn"))
  weights_of = lambda c: (c.loss.content_weight, c.loss.texture_weight, c.loss.color_weight, c.loss.tv_weight)
  assert weights_of(code) == (10.0, 1.0, 0.5, 2000.0) and weights_of(paper) == weights_of(paper_bn) == (1.0, 0.4, 0.1, 400.0)
  # The IQE code's "BatchNormalization" is a per-image norm; paper_bn reads the word literally.
  assert (code.generator.norm, paper.generator.norm, paper.discriminator.norm) == ("instance",) * 3
  assert (paper_bn.generator.norm, paper_bn.discriminator.norm) == ("batch", "batch")
  assert (code.generator.kernel_init, paper.generator.kernel_init, paper.discriminator.bias_init) == (
      "truncated_normal_0.01", "normal_0.01", 0.01)
  for c in (code, paper):
    assert (c.batch_size, c.data.crop_size, c.num_train_steps, c.optimizer.learning_rate) == (50, 100, 20_000, 5e-4)
  assert (code.eval.psnr_pooling, code.eval.clip, paper.eval.psnr_pooling, paper.eval.clip) == ("batch", False, "image", True)
  assert load_config("configs/iqe.py:fivek").data.name == "mit_fivek/expert_c"
  assert load_config("configs/iqe.py:s7").data.name == "s7/short_jpg"
  assert load_config("configs/iqe.py:demo").loss.content_weight == 0


def test_code_config_stops_with_the_vgg_error_when_weights_are_missing(tmp_path, monkeypatch):
  monkeypatch.setenv("LLE_WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="python -m lle.weights vgg19 --from FILE --id vgg19_matconvnet"):
    methods.get(load_config("configs/iqe.py"))


def _install_vgg(arrays, tmp_path, monkeypatch):
  """Writes VGG-19 `arrays` as converted MatConvNet weights (DPED's: RGB x 255 minus the ImageNet mean) where
  `lle.weights.load` looks."""
  folder = tmp_path / "vgg19_matconvnet"
  folder.mkdir()
  np.savez(folder / "params.npz", **arrays)
  meta = {"depth": 19, "params_sha256": weights._sha256(str(folder / "params.npz")),
          "preprocess": {"bgr": False, "scale": 255.0, "mean": [123.68, 116.779, 103.939], "std": [1, 1, 1]}}
  (folder / "meta.json").write_text(json.dumps(meta))
  monkeypatch.setenv("LLE_WEIGHTS_DIR", str(tmp_path))


@pytest.fixture(scope="module")
def content_step(tmp_path_factory):
  """(config, method, jitted train step, VGG arrays) of the tiny config with the content term on, its
  method built on He-scaled random VGG-19 weights converted as MatConvNet's: one compiled VGG-19 step
  (20-60 s on 2 cores) for the two tests below. The step takes the VGG weights from the state, so a test
  puts other weights there without compiling again."""
  rng = np.random.default_rng(0)
  arrays = {}
  for name, (k, b) in weights.expected_shapes(19).items():
    arrays[f"{name}/kernel"] = (rng.standard_normal(k) * np.sqrt(2 / (9 * k[2]))).astype(np.float32)
    arrays[f"{name}/bias"] = np.zeros(b, np.float32)
  config = load_config("configs/iqe.py:tiny")
  with config.unlocked():
    config.loss.content_weight = 10.0
    config.data.crop_size = 36  # as the hand computation below (relu5_4 is 3 x 3)
  with pytest.MonkeyPatch.context() as monkeypatch:
    _install_vgg(arrays, tmp_path_factory.mktemp("weights"), monkeypatch)
    method = methods.get(config)
  return config, method, jax.jit(method.train_step), arrays


def test_content_loss_uses_the_converted_vgg(content_step):
  """With VGG weights present the content term enters the loss; its weights sit in the state unchanged."""
  _, method, train_step, arrays = content_step
  state = method.init(jax.random.key(0))
  assert "vgg" in state and _count(state["vgg"]) == _count(arrays)
  batch = {"input": jnp.full((2, 36, 36, 3), 0.1), "target": jnp.full((2, 36, 36, 3), 0.6)}
  new_state, metrics = train_step(state, batch, jax.random.key(1))
  assert float(metrics["content"]) > 0
  np.testing.assert_array_equal(np.asarray(new_state["vgg"]["conv5_4"]["kernel"]), arrays["conv5_4/kernel"])


def test_training_lowers_the_generator_loss():
  config = load_config("configs/iqe.py:tiny")
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32) * 0.2
  batch = {"input": jnp.asarray(x), "target": jnp.asarray(np.sqrt(x))}
  step = jax.jit(method.train_step)
  colours = []
  for i in range(30):
    state, metrics = step(state, batch, jax.random.key(i))
    colours.append(float(metrics["color"]))
  assert colours[-1] < 0.5 * colours[0]
  assert 0.0 <= float(metrics["d_accuracy"]) <= 1.0


@pytest.mark.parametrize("size", [(10, 12), (100, 100), (1, 257)])  # sums: blocks of 120, of 250; XLA (prime)
def test_instance_norm_is_dpeds_formula_with_its_gradient(size):
  """(x - mean) / sqrt(var + eps) * scale + shift per image and channel over H, W, biased two-pass
  variance (tf.nn.moments), against float64 numpy; its gradient against autodiff of the plain formula."""
  from lle.nn.iqe import InstanceNorm
  x = np.random.default_rng(size[0]).normal(size=(2, *size, 4)).astype(np.float32) * 2 + 1
  params = {"scale": jnp.linspace(0.5, 2, 4), "shift": jnp.linspace(-1, 1, 4)}
  # Compiled (as the networks run): op by op, each operation of each shape compiles on its own.
  y = jax.jit(InstanceNorm(epsilon=1e-3).apply)({"params": params}, x)
  x64 = x.astype(np.float64)
  mean = x64.mean(axis=(1, 2), keepdims=True)
  expected = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(axis=(1, 2), keepdims=True) + 1e-3)
  expected = expected * np.asarray(params["scale"]) + np.asarray(params["shift"])
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

  def plain(params, x):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(x - mean).mean(axis=(1, 2), keepdims=True)
    return (x - mean) / jnp.sqrt(var + 1e-3) * params["scale"] + params["shift"]

  loss = lambda f: (lambda p, x: jnp.sum(jnp.sin(3 * f(p, x))))
  ours = jax.jit(jax.grad(loss(lambda p, x: InstanceNorm(epsilon=1e-3).apply({"params": p}, x)), argnums=(0, 1)))
  reference = jax.jit(jax.grad(loss(plain), argnums=(0, 1)))
  for a, b in zip(jax.tree.leaves(ours(params, x)), jax.tree.leaves(reference(params, x))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_windows_normalised_with_whole_image_statistics_equal_one_pass():
  """Instance norm is image-global: tiled inference computes its statistics on the whole image once, and
  the windows' cores then equal the one-pass output."""
  from lle import tiling
  config = load_config("configs/iqe.py:tiny")
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  rng = np.random.default_rng(1)  # weights with some contrast: at initialisation the output is flat
  scaled = lambda p: jnp.asarray(rng.normal(0, 1 / np.sqrt(np.prod(p.shape[:-1])) if p.ndim > 1 else 0.1, p.shape),
                                 jnp.float32)
  state["gen"] = state["gen"].replace(params=jax.tree.map(scaled, state["gen"].params))
  image = np.random.default_rng(0).random((70, 90, 3), dtype=np.float32)
  whole = np.asarray(method.predict(state, jnp.asarray(image)[None]))[0]
  tiled = tiling.TiledPredictor(method, state, tile=24)(image)
  assert whole.std() > 1e-3
  np.testing.assert_allclose(tiled, whole, atol=2e-5)


def test_tiny_run_through_the_trainer(tmp_path):
  config = load_config("configs/iqe.py:tiny")
  results = train.train_and_evaluate(config, tmp_path)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["step"] == config.num_train_steps == results["step"]
  assert set(saved["model"]) == {"psnr", "ssim", "ms_ssim_dped"} and set(saved["baselines"]) == {"identity"}
  assert saved["conventions"]["psnr_pooling"] == "batch" and saved["config"]["variants"] == ["code", "tiny"]
  assert np.isfinite(saved["model"]["psnr"])


# --- plain transcriptions of DPED's models.py / train_model.py (lax and numpy, none of lle's layers) -----

def _tf_conv(x, kernel, bias, stride=1):
  """tf.nn.conv2d(x, W, [1, s, s, 1], padding='SAME') + b."""
  y = jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   precision=jax.lax.Precision.HIGHEST)
  return y + bias


def _moments_norm(x, p, axes, eps=1e-3):
  """DPED `_instance_norm` (axes [1, 2]) / a batch norm's training statistics (axes [0, 1, 2])."""
  mu = jnp.mean(x, axis=axes, keepdims=True)
  var = jnp.mean(jnp.square(x - mu), axis=axes, keepdims=True)
  return p["scale"] * (x - mu) / (var + eps) ** 0.5 + p.get("shift", p.get("bias"))


def _plain_generator(params, x, norm=lambda x, p: _moments_norm(x, p, (1, 2))):
  """models.py `resnet`: W1 + ReLU, residual blocks (conv -> norm -> ReLU, twice, + skip), W10, W11 + ReLU,
  W12 -> tanh * 0.58 + 0.5."""
  conv = lambda h, i: _tf_conv(h, params[f"W{i}"]["kernel"], params[f"W{i}"]["bias"])
  h = jax.nn.relu(conv(x, 1))
  i = 2
  while f"norm{i}" in params:
    skip = h
    h = jax.nn.relu(norm(conv(h, i), params[f"norm{i}"]))
    h = jax.nn.relu(norm(conv(h, i + 1), params[f"norm{i + 1}"])) + skip
    i += 2
  h = jax.nn.relu(conv(jax.nn.relu(conv(h, i)), i + 1))
  return jnp.tanh(conv(h, i + 2)) * 0.58 + 0.5


def _plain_discriminator(params, x, strides=(4, 2, 1, 1, 2)):
  """models.py `adversarial`: conv -> leaky_relu(0.2) (-> `_instance_norm` after conv 2-5), flatten, FC
  + leaky_relu, FC; softmax gives DPED's discrim_predictions."""
  leaky = lambda v: jnp.maximum(0.2 * v, v)
  for i, s in enumerate(strides, start=1):
    x = leaky(_tf_conv(x, params[f"conv{i}"]["kernel"], params[f"conv{i}"]["bias"], s))
    if i > 1:
      x = _moments_norm(x, params[f"norm{i}"], (1, 2))
  x = x.reshape(x.shape[0], -1)
  x = leaky(jnp.dot(x, params["fc"]["kernel"], precision="highest") + params["fc"]["bias"])
  return jnp.dot(x, params["out"]["kernel"], precision="highest") + params["out"]["bias"]


def _perturbed(params, seed):
  """Every parameter drawn away from its initial value (norm scales around 1, shifts around 0, biases
  non-zero), so that a wrong order or a dropped scale / shift shows."""
  rng = np.random.default_rng(seed)
  leaves, tree = jax.tree.flatten(params)
  out = []
  for leaf in leaves:
    if leaf.ndim == 1:
      out.append(jnp.asarray(rng.uniform(0.5, 1.5, leaf.shape) if rng.random() < 0.5 else rng.normal(0, 0.3, leaf.shape),
                             jnp.float32))
    else:
      fan_in = int(np.prod(leaf.shape[:-1]))
      out.append(jnp.asarray(rng.normal(0, 1.5 / np.sqrt(fan_in), leaf.shape), jnp.float32))
  return jax.tree.unflatten(tree, out)


def _small(config):
  with config.unlocked():
    config.data.crop_size = 100  # the discriminator's flatten size follows from its input's
    config.generator.features, config.generator.num_blocks = 6, 2
    config.discriminator.conv_features, config.discriminator.fc_features = (5, 6, 7, 7, 6), 9
  return config


def test_discriminator_forward_is_dpeds_with_non_trivial_norm_parameters():
  config = _small(load_config("configs/iqe.py"))
  module = iqe.discriminator(config)
  x = jnp.asarray(np.random.default_rng(0).random((3, 100, 100, 1)), jnp.float32)
  params = _perturbed(jax.jit(module.init)(jax.random.key(0), x)["params"], seed=1)  # shapes: all redrawn
  assert float(jnp.std(params["norm3"]["scale"])) > 0.1 and float(jnp.std(params["norm3"]["shift"])) > 0.05
  got = jax.jit(module.apply)({"params": params}, x)
  plain_discriminator = jax.jit(_plain_discriminator)  # one compile: op by op, each op compiles on its own
  want = plain_discriminator(params, x)
  assert got.shape == (3, 2) and float(jnp.std(want)) > 1e-2
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
  # The norms matter here: with scale 1 and shift 0 everywhere the logits differ.
  plain = {**params, **{k: {"scale": jnp.ones_like(v["scale"]), "shift": jnp.zeros_like(v["shift"])}
                        for k, v in params.items() if k.startswith("norm")}}
  assert float(jnp.max(jnp.abs(plain_discriminator(plain, x) - want))) > 1e-2


@pytest.mark.parametrize("variant", ["paper", "paper_bn"])
def test_paper_generator_forward_in_training_and_evaluation_mode(variant):
  """`paper`: the IQE code's per-image "BatchNormalization", the same in both modes. `paper_bn`: batch
  statistics in training, the running averages (at initialisation mean 0, variance 1) in evaluation."""
  config = _small(load_config(f"configs/iqe.py:{variant}"))
  module = iqe.generator(config)
  x = jnp.asarray(np.random.default_rng(2).random((2, 20, 24, 3)), jnp.float32)
  variables = jax.jit(module.init)(jax.random.key(0), x)  # one compile; the parameters are all redrawn
  params = _perturbed(variables["params"], seed=3)
  stats = variables.get("batch_stats", {})
  variables = {"params": params, "batch_stats": stats}
  train, updates = jax.jit(lambda v, x: module.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
  evaluation = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x)
  if variant == "paper":
    want = jax.jit(_plain_generator)(params, x)
    np.testing.assert_allclose(train, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(evaluation, want, rtol=1e-4, atol=1e-5)
    assert not updates.get("batch_stats")
  else:
    batch = jax.jit(lambda p, x: _plain_generator(p, x, lambda v, q: _moments_norm(v, q, (0, 1, 2))))
    np.testing.assert_allclose(train, batch(params, x), rtol=1e-4, atol=1e-5)
    running = lambda v, p: p["scale"] * v / (1.0 + 1e-3) ** 0.5 + p["bias"]
    np.testing.assert_allclose(evaluation, jax.jit(lambda p, x: _plain_generator(p, x, running))(params, x),
                               rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(train - evaluation))) > 1e-3
    mean = updates["batch_stats"]["norm2"]["mean"]
    assert float(jnp.max(jnp.abs(mean))) > 0  # momentum 0.99: 1 % of the first batch's mean
  assert float(jnp.std(train)) > 1e-3


def _np_blur(images, kernel):
  """tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], 'SAME') per channel, in numpy float64."""
  k = kernel.shape[0]
  lo = (k - 1) // 2
  padded = np.pad(images, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
  out = np.zeros_like(images)
  h, w = images.shape[1:3]
  for a in range(k):
    for b in range(k):
      out += kernel[a, b] * padded[:, a:a + h, b:b + w]
  return out


def _np_softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_one_train_step_is_train_model_py_lines_55_to_99():
  """The generator step's metrics against train_model.py's graph (adv_ = 0: the texture term is
  -loss_discrim = sum log P(enhanced)), and the discriminator step's against the same graph fed the swaps,
  with the generator as updated by its step; the batch is the same for both steps (lle's reading). The
  tiny config's sizes (its step is compiled once for this and the training test)."""
  config = load_config("configs/iqe.py:tiny")
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(0))  # its parameters are all redrawn below
  state["gen"] = state["gen"].replace(params=_perturbed(state["gen"].params, seed=4))
  state["disc"] = state["disc"].replace(params=_perturbed(state["disc"].params, seed=5))
  rng = np.random.default_rng(6)
  phone = rng.random((2, 32, 32, 3)).astype(np.float32) * 0.4
  dslr = np.clip(phone * 2.2 + rng.normal(0, 0.02, phone.shape), 0, 1).astype(np.float32)
  key = jax.random.key(13)
  swaps = np.asarray(jax.random.bernoulli(key, 0.5, (2,)), np.float64)  # lle's draw, as the step makes it
  assert swaps.tolist() in ([0.0, 1.0], [1.0, 0.0])  # the enhanced image and the DSLR photo both reach D
  new_state, metrics = jax.jit(method.train_step)(state, {"input": jnp.asarray(phone), "target": jnp.asarray(dslr)}, key)

  # The transcriptions compiled whole: op by op, each of their operations compiles on its own.
  plain_generator, plain_discriminator = jax.jit(_plain_generator), jax.jit(_plain_discriminator)
  grey = lambda x: np.sum(x * np.array([0.2989, 0.5870, 0.1140]), axis=-1, keepdims=True)
  d_params = state["disc"].params
  # Generator step: enhanced = resnet(phone), adv_ = zeros.
  enhanced = np.asarray(plain_generator(state["gen"].params, jnp.asarray(phone)), np.float64)
  probs = np.clip(_np_softmax(np.asarray(plain_discriminator(d_params, jnp.asarray(grey(enhanced), jnp.float32)),
                                         np.float64)), 1e-10, 1.0)
  loss_texture = np.sum(np.log(probs[:, 1]))  # -(-sum([0, 1] . log p))
  kernel = np.asarray(losses.color_kernel("dped"), np.float64)
  loss_color = np.sum((_np_blur(dslr.astype(np.float64), kernel) - _np_blur(enhanced, kernel)) ** 2) / (2 * 2)
  y_tv = np.sum((enhanced[:, 1:] - enhanced[:, :-1]) ** 2) / 2
  x_tv = np.sum((enhanced[:, :, 1:] - enhanced[:, :, :-1]) ** 2) / 2
  loss_tv = 2 * (x_tv / (32 * 31 * 3) + y_tv / (31 * 32 * 3)) / 2  # _tensor_size: per image
  lc = config.loss
  loss_generator = lc.texture_weight * loss_texture + lc.color_weight * loss_color + lc.tv_weight * loss_tv
  for name, want in (("texture", loss_texture), ("color", loss_color), ("tv", loss_tv), ("g_loss", loss_generator)):
    assert float(metrics[name]) == pytest.approx(want, rel=2e-4, abs=1e-5), name
  # Discriminator step: adversarial_ = enhanced_gray (1 - adv_) + dslr_gray adv_, targets [adv_, 1 - adv_].
  enhanced = np.asarray(plain_generator(new_state["gen"].params, jnp.asarray(phone)), np.float64)
  s = swaps[:, None, None, None]
  d_in = grey(enhanced) * (1 - s) + grey(dslr.astype(np.float64)) * s
  probs = _np_softmax(np.asarray(plain_discriminator(d_params, jnp.asarray(d_in, jnp.float32)), np.float64))
  target = np.stack([swaps, 1 - swaps], axis=1)
  loss_discrim = -np.sum(target * np.log(np.clip(probs, 1e-10, 1.0)))
  accuracy = np.mean(np.argmax(probs, 1) == np.argmax(target, 1))
  assert float(metrics["d_loss"]) == pytest.approx(loss_discrim, rel=2e-4)
  assert float(metrics["d_accuracy"]) == accuracy


@pytest.mark.slow  # a VGG-19 train step to compile (shared with test_content_loss_uses_the_converted_vgg)
def test_content_term_is_relu5_4_of_x255_minus_the_mean_with_same_pooling_by_hand(tmp_path, monkeypatch,
                                                                                   content_step):
  """VGG-19 weights that pass channels 0-2 straight through every layer (centre tap 1, nothing else), so
  relu5_4 = the 2x2 max, pooled four times with SAME padding, of relu(255 x - ImageNet mean). The
  generator's last layer is set to give exactly 0.6 everywhere; the target (36 x 36: relu5_4 is 3 x 3) is 0.5
  with one pixel of 1.0 at the corner (35, 35), which VALID pooling (9 -> 4) would drop."""
  arrays = {}
  for name, (k, b) in weights.expected_shapes(19).items():
    kernel = np.zeros(k, np.float32)
    for c in range(3):
      kernel[k[0] // 2, k[1] // 2, c, c] = 1.0
    arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, np.zeros(b, np.float32)
  _install_vgg(arrays, tmp_path, monkeypatch)
  config, method, train_step, _ = content_step  # content weight 10, 36 x 36
  vgg_params, _ = iqe.load_vgg(config)  # these weights, loaded as methods.get loads them (the same preprocess)
  state = method.init(jax.random.key(0))
  state["vgg"] = jax.tree.map(jnp.asarray, vgg_params)  # what init does with the weights it was built on
  params = dict(state["gen"].params)
  last = max((k for k in params if k.startswith("W")), key=lambda k: int(k[1:]))
  params[last] = {"kernel": jnp.zeros_like(params[last]["kernel"]),
                  "bias": jnp.full_like(params[last]["bias"], np.arctanh(0.1 / 0.58))}
  state["gen"] = state["gen"].replace(params=params)
  target = np.full((2, 36, 36, 3), 0.5, np.float32)
  target[:, 35, 35] = 1.0
  _, metrics = train_step(state, {"input": jnp.zeros((2, 36, 36, 3)), "target": jnp.asarray(target)}, jax.random.key(1))
  values = {"mse": float(metrics["content"])}
  # By hand: 255 x 0.6 = 153 and 255 x 0.5 = 127.5 both exceed every channel's mean, so the features differ by
  # 25.5 in channels 0-2 at 8 of the 3 x 3 positions, and by 153 - 255 = -102 at the corner's; channels 3-511
  # are 0 for both. DPED: 2 l2_loss / (3 3 512 batch), the two images alike.
  squared = 3 * (8 * 25.5 ** 2 + 102.0 ** 2)
  assert values["mse"] == pytest.approx(squared / (3 * 3 * 512), rel=1e-5)
  # The paper's ||d|| / (C H W) is DPED's value divided by ||d|| (at 100 x 100, C H W = 7 7 512 = 25,088,
  # whose square root is 158.4: the configs/iqe.py note).
  diff = np.zeros((2, 3, 3, 512), np.float32)
  diff[:, :, :, :3] = 25.5
  diff[:, 2, 2, :3] = -102.0
  as_image = jnp.asarray(diff.transpose(0, 1, 3, 2))  # [2, 3, 512, 3]: `perceptual` takes RGB-shaped inputs
  paper = float(losses.perceptual(as_image, jnp.zeros_like(as_image), features=lambda x: {"f": x.transpose(0, 1, 3, 2)},
                                  layer="f", preprocess=lambda x: x, distance="l2_over_chw"))
  assert paper == pytest.approx(np.sqrt(squared) / (3 * 3 * 512), rel=1e-5)
  assert paper / values["mse"] == pytest.approx(1 / np.sqrt(squared), rel=1e-5)
  assert np.sqrt(7 * 7 * 512) == pytest.approx(158.4, abs=0.05)

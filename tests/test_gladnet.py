"""GLADNet: architecture against the official code's layer list, any-size inference, loss, schedule,
and one tiny run through the trainer."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import losses, methods, optim, train
from lle.methods import gladnet
from lle.nn.gladnet import nearest_source, resize_nearest
from tests.conftest import load_config


def _conv_params(k, cin, cout):
  return k * k * cin * cout + cout  # weights + bias


def _official_layers(num_blocks):
  """(in, out) channels of every 3x3 conv of weichen582/GLADNet `model.py` (with `num_blocks` down/up)."""
  encoder = [(3, 64)] + [(64, 64)] * (num_blocks - 1)  # p_conv1..6, stride 2
  decoder = [(64, 64)] * num_blocks  # p_deconv1..6, resize + conv
  detail = [(64 + 3, 128)] + [(128, 128)] * 3 + [(128, 3)]  # a_conv1..5 on concat [global, input]
  return encoder + decoder + detail


def _count(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("variant,num_blocks", [("code", 6), ("paper", 5)])
def test_parameter_count_matches_the_official_layer_list(variant, num_blocks):
  config = load_config(f"configs/gladnet.py:{variant}")
  expected = sum(_conv_params(3, cin, cout) for cin, cout in _official_layers(num_blocks))
  if variant == "code":
    assert expected == 931_523
  shapes = jax.eval_shape(lambda: gladnet.network(config).init(jax.random.key(0), jnp.zeros((1, 96, 96, 3))))
  params = shapes["params"]
  assert _count(params) == expected
  assert len(params) == len(_official_layers(num_blocks))


def test_initialisation_is_glorot_in_the_code_and_he_in_the_paper():
  """code: tf.layers.conv2d's Glorot uniform, |w| <= sqrt(6 / (fan_in + fan_out)). paper: He et al. 2015, a
  Gaussian of std sqrt(2 / fan_in), not truncated (Keras' he_normal cuts at 2 std). Zero biases in both."""
  fan = 9 * 64  # Conv_1: 3x3, 64 -> 64
  for variant in ("code", "paper"):
    config = load_config(f"configs/gladnet.py:{variant}")
    params = gladnet.network(config).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    assert all(float(jnp.abs(layer["bias"]).max()) == 0 for layer in params.values())
    kernel = np.asarray(params["Conv_1"]["kernel"])
    if variant == "code":
      limit = np.sqrt(6 / (fan + fan))
      assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    else:
      std = np.sqrt(2 / fan)
      assert kernel.std() == pytest.approx(std, rel=0.02) and abs(kernel.mean()) < 0.02 * std
      assert (np.abs(kernel) > 2.5 * std).mean() == pytest.approx(0.0124, abs=0.003)  # Gaussian tails


def test_code_and_paper_variants_differ_as_documented():
  code, paper = load_config("configs/gladnet.py"), load_config("configs/gladnet.py:paper")
  assert tuple(code.loss.channel_weights) == (0.11448, 0.58661, 0.29891)
  assert tuple(paper.loss.channel_weights) == (0.29891, 0.58661, 0.11448)
  assert (code.model.num_blocks, paper.model.num_blocks) == (6, 5)
  assert code.data.name == "lol/v1" and code.data.crop_size == 384 and code.batch_size == 8
  assert code.num_train_steps == 50 * (485 // 8)
  assert code.optimizer.schedule == "exponential" and code.optimizer.learning_rate == 1e-3
  assert (code.model.kernel_init, paper.model.kernel_init) == ("glorot_uniform", "he_gaussian")
  assert paper.optimizer.schedule == "step" and paper.data.name == code.data.name == "lol/v1"
  for spec in ("configs/gladnet.py:demo", "configs/gladnet.py:tiny", "configs/gladnet.py:paper,demo"):
    assert load_config(spec).data.name == "lle_demo/lowlight"


# TensorFlow's own source indices (tensorflow-cpu 2.21, tf.compat.v1.image.resize_nearest_neighbor with
# align_corners=False, half_pixel_centers=False, on a float32 ramp 0 .. in - 1 along one axis), written as
# {(in, out): {output d: TF's index where it differs from the exact floor(d * in / out)}}: every other index
# is the exact one. (96 -> 400, 600 and the integer factors have none; 16 -> 82 is the tiny config's.)
TF_NEAREST_INDEX = {
    (200, 96): {60: 124}, (96, 183): {61: 31, 122: 63}, (96, 249): {83: 31, 166: 63},
    (400, 96): {30: 124, 54: 224, 60: 249}, (112, 96): {54: 62}, (96, 74): {37: 47},
    (96, 123): {41: 31, 82: 63}, (16, 82): {41: 7}, (16, 94): {47: 7}, (16, 122): {61: 7},
    (96, 400): {}, (600, 96): {}, (96, 600): {}, (37, 96): {}, (96, 37): {}, (2, 3): {}, (3, 2): {},
    (3, 6): {}, (48, 96): {}, (96, 48): {},
}


@pytest.mark.parametrize("size, out", list(TF_NEAREST_INDEX), ids=lambda v: str(v))
def test_nearest_source_is_tensorflows_index(size, out):
  expected = (np.arange(out) * size) // out
  for d, index in TF_NEAREST_INDEX[(size, out)].items():
    assert expected[d] == index + 1  # TensorFlow's float32 product falls just below the whole number
    expected[d] = index
  np.testing.assert_array_equal(nearest_source(out, size), expected)
  x = jnp.arange(float(size)).reshape(1, size, 1, 1)
  np.testing.assert_array_equal(np.asarray(resize_nearest(x, (out, 1)))[0, :, 0, 0], expected)


@pytest.mark.parametrize("size, out", [((3, 12), (6, 3)), ((12, 5), (4, 5)), ((6, 7), (4, 21)), ((8, 8), (5, 16)),
                                       ((200, 96), (96, 183))])
def test_nearest_resize_integer_factors_take_the_gathered_pixels_and_gradients(size, out):
  """Repeat (up), strided slice (down) and gather (other ratios) pick the same pixels as indexing with
  TensorFlow's source index, with the same gradients."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *size, 3)), jnp.float32)
  rows, cols = nearest_source(out[0], size[0]), nearest_source(out[1], size[1])
  reference = lambda x: x[:, rows][:, :, cols]
  np.testing.assert_array_equal(resize_nearest(x, out), reference(x))
  weights = jnp.asarray(np.random.default_rng(1).normal(size=(2, *out, 3)), jnp.float32)
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * weights))(x)
  np.testing.assert_allclose(grad(lambda x: resize_nearest(x, out)), grad(reference), rtol=1e-6, atol=1e-6)


def test_any_input_size_in_one_pass_and_relu_output():
  config = load_config("configs/gladnet.py:tiny")
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(0))
  assert method.size_multiple == 1
  predict = jax.jit(method.predict)  # one compile per size: op by op, each op of each size compiles on its own
  for shape in ((1, 37, 53, 3), (2, 16, 16, 3), (1, 9, 120, 3)):
    out = predict(state, jnp.full(shape, 0.3))
    assert out.shape == shape and float(out.min()) >= 0.0


def test_weighted_l1_applies_weights_to_rgb_in_order():
  pred = jnp.zeros((1, 2, 2, 3))
  for c, w in enumerate((0.11448, 0.58661, 0.29891)):
    target = pred.at[..., c].set(1.0)
    assert float(losses.weighted_l1(pred, target, channel_weights=(0.11448, 0.58661, 0.29891))) == \
        pytest.approx(w / 3, rel=1e-6)


def test_learning_rate_decays_continuously_in_the_code_and_by_steps_in_the_paper():
  code = optim.schedule(load_config("configs/gladnet.py").optimizer)
  assert float(code(0)) == pytest.approx(1e-3)
  assert float(code(50)) == pytest.approx(1e-3 * 0.96**0.5, rel=1e-6)
  assert float(code(300)) == pytest.approx(1e-3 * 0.96**3, rel=1e-6)
  paper = optim.schedule(load_config("configs/gladnet.py:paper").optimizer)  # "multiply 0.96 after each 100 batch"
  assert [float(paper(s)) for s in (0, 50, 99, 100, 199, 300)] == pytest.approx(
      [1e-3, 1e-3, 1e-3, 0.96e-3, 0.96e-3, 0.96**3 * 1e-3], rel=1e-6)


def test_training_lowers_the_loss():
  config = load_config("configs/gladnet.py:tiny")
  with config.unlocked():
    config.optimizer.learning_rate = 3e-3
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  rng = np.random.default_rng(0)
  x = rng.random((8, 32, 32, 3), dtype=np.float32) * 0.2
  batch = {"input": jnp.asarray(x), "target": jnp.asarray(np.sqrt(x))}
  step = jax.jit(method.train_step)
  first = None
  for i in range(15):
    state, metrics = step(state, batch, jax.random.key(i))
    first = first if first is not None else float(metrics["loss"])
  assert float(metrics["loss"]) < 0.8 * first


def test_tiny_run_through_the_trainer(tmp_path):
  config = load_config("configs/gladnet.py:tiny")
  results = train.train_and_evaluate(config, tmp_path)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["step"] == config.num_train_steps == results["step"]
  assert saved["dataset"]["name"] == "lle_demo" and saved["dataset"]["config"] == "lowlight"
  assert set(saved["model"]) == {"psnr", "ssim"} and set(saved["baselines"]) == {"identity"}
  assert np.isfinite(saved["model"]["psnr"])


# A numpy transcription of the official `FG()` (weichen582/GLADNet `model.py`), written from its
# TensorFlow 1 calls: `tf.layers.conv2d(x, n, 3, s, padding='same', activation=relu)` (in float64) and
# `tf.image.resize_nearest_neighbor` (legacy: source index floor(d * scale), d and scale = in / out
# float32 and their product rounded to float32, as resize_nearest_neighbor_op.cc computes it).
def _tf_conv_same(x, kernel, bias, stride):
  """TF 'SAME' convolution of one image [H, W, C]: output ceil(H / s), padding (total // 2) before."""
  h, w = x.shape[:2]
  k = kernel.shape[0]
  oh, ow = -(-h // stride), -(-w // stride)
  ph, pw = max((oh - 1) * stride + k - h, 0), max((ow - 1) * stride + k - w, 0)
  xp = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
  patches = np.concatenate([xp[dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
                            for dy in range(k) for dx in range(k)], axis=-1)  # [oh, ow, k * k * C], (dy, dx, c)
  return patches @ kernel.reshape(-1, kernel.shape[-1]) + bias


def _tf_resize_nearest(x, size):
  index = lambda n, out: np.minimum(
      np.floor(np.float32(np.arange(out)) * np.float32(np.float32(n) / np.float32(out))).astype(int), n - 1)
  return x[index(x.shape[0], size[0])][:, index(x.shape[1], size[1])]


def _official_fg(image, weights):
  """FG(input_im) for one image; `weights[name] = (kernel, bias)` with the official layer names."""
  relu = lambda v: np.maximum(v, 0.0)
  conv = lambda x, name, stride=1: relu(_tf_conv_same(x, *weights[name], stride))
  rs = _tf_resize_nearest(image, (96, 96))
  p = [rs]
  for i in range(1, 7):
    p.append(conv(p[-1], f"p_conv{i}", 2))  # 48, 24, 12, 6, 3, 2
  d = p[6]
  for i, (skip, size) in enumerate(zip((p[5], p[4], p[3], p[2], p[1]), (3, 6, 12, 24, 48)), start=1):
    d = conv(_tf_resize_nearest(d, (size, size)), f"p_deconv{i}") + skip
  d = conv(_tf_resize_nearest(d, (96, 96)), "p_deconv6")
  a = np.concatenate([_tf_resize_nearest(d, image.shape[:2]), image], axis=-1)
  for i in range(1, 6):
    a = conv(a, f"a_conv{i}")
  return a


def test_forward_pass_matches_a_numpy_transcription_of_the_official_fg():
  """Same weights in both, so any difference in concat order, skip placement, resize indices or padding
  shows: the output of our network equals the official graph's to float32 precision. At 112 x 74
  TensorFlow's float32 resize index differs from the exact floor(d * in / out) both ways: 112 -> 96 at
  row 54, 96 -> 74 at column 37."""
  config = load_config("configs/gladnet.py")  # the code's layout: 6 + 6 blocks, 96x96, 64 / 128 channels
  module = gladnet.network(config)
  height, width = 112, 74
  image = np.random.default_rng(0).random((1, height, width, 3))
  params = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, height, width, 3)))["params"]
  names = [f"p_conv{i}" for i in range(1, 7)] + [f"p_deconv{i}" for i in range(1, 7)] + \
      [f"a_conv{i}" for i in range(1, 6)]
  assert len(params) == len(names)
  rng = np.random.default_rng(1)
  weights, shared = {}, {}
  for i, name in enumerate(names):  # Flax numbers the convolutions in the order FG() creates them
    shape = params[f"Conv_{i}"]["kernel"].shape
    kernel = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:3])), shape)
    bias = rng.normal(0.0, 0.05, shape[-1])
    weights[name] = (kernel, bias)
    shared[f"Conv_{i}"] = {"kernel": jnp.asarray(kernel, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)}
  ours = np.asarray(module.apply({"params": shared}, jnp.asarray(image, jnp.float32)))[0]
  reference = _official_fg(image[0], weights)
  assert reference.shape == ours.shape == (height, width, 3) and reference.std() > 0.05
  np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())

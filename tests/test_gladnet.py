"""GLADNet: architecture against the official code's layer list, any-size inference, loss, schedule,
and one tiny run through the trainer."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import losses, methods, optim, train
from lle.methods import gladnet
from lle.nn.gladnet import resize_nearest
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


def test_nearest_resize_is_tf1_legacy():
  x = jnp.arange(3.0).reshape(1, 1, 3, 1)
  np.testing.assert_array_equal(np.asarray(resize_nearest(x, (1, 6)))[0, 0, :, 0], [0, 0, 1, 1, 2, 2])
  np.testing.assert_array_equal(np.asarray(resize_nearest(x, (1, 2)))[0, 0, :, 0], [0, 1])  # floor(d * 3 / 2)
  y = jnp.arange(2.0).reshape(1, 1, 2, 1)
  np.testing.assert_array_equal(np.asarray(resize_nearest(y, (1, 3)))[0, 0, :, 0], [0, 0, 1])


def test_any_input_size_in_one_pass_and_relu_output():
  config = load_config("configs/gladnet.py:tiny")
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  assert method.size_multiple == 1
  for shape in ((1, 37, 53, 3), (2, 16, 16, 3), (1, 9, 120, 3)):
    out = method.predict(state, jnp.full(shape, 0.3))
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

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
  # Glorot-uniform kernels and zero biases, as tf.layers.conv2d.
  real = gladnet.network(config).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  assert all(float(jnp.abs(layer["bias"]).max()) == 0 for layer in real.values())
  kernel = real["Conv_1"]["kernel"]
  limit = np.sqrt(6 / (9 * 64 + 9 * 64))
  assert float(jnp.abs(kernel).max()) <= limit and float(jnp.abs(kernel).max()) > 0.9 * limit


def test_code_and_paper_variants_differ_as_documented():
  code, paper = load_config("configs/gladnet.py"), load_config("configs/gladnet.py:paper")
  assert tuple(code.loss.channel_weights) == (0.11448, 0.58661, 0.29891)
  assert tuple(paper.loss.channel_weights) == (0.29891, 0.58661, 0.11448)
  assert (code.model.num_blocks, paper.model.num_blocks) == (6, 5)
  assert code.data.name == "lol/v1" and code.data.crop_size == 384 and code.batch_size == 8
  assert code.num_train_steps == 50 * (485 // 8)
  assert code.optimizer.schedule == "exponential" and code.optimizer.learning_rate == 1e-3
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


def test_learning_rate_decays_continuously():
  config = load_config("configs/gladnet.py")
  lr = optim.schedule(config.optimizer)
  assert float(lr(0)) == pytest.approx(1e-3)
  assert float(lr(50)) == pytest.approx(1e-3 * 0.96**0.5, rel=1e-6)
  assert float(lr(300)) == pytest.approx(1e-3 * 0.96**3, rel=1e-6)


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

"""NEID: 2x output, DR's head out of inference, the losses (Huber, HSV colour), the Table 2 ablations, the
data recipe's shapes and one tiny run through the trainer."""
import json

import jax
import jax.numpy as jnp
import matplotlib.colors
import numpy as np
import optax
import pytest

from lle import color, losses, methods, optim, train
from lle.data import pipeline
from lle.methods import neid
from lle.nn.neid import depth_to_space
from tests.conftest import load_config

VARIANTS = ("le_dr_ff", "le_dr", "le", "unet")


def test_paper_values():
  c = load_config("configs/neid.py")
  assert (c.batch_size, c.num_train_steps, c.data.crop_size, c.data.input_scale) == (8, 2000 * 60, 256, 2)
  assert c.optimizer.learning_rate == 1e-4 and c.optimizer.schedule == "piecewise"
  lr = optim.schedule(c.optimizer)
  assert [float(lr(s)) for s in (0, 500 * 60 - 1, 500 * 60, 1000 * 60)] == pytest.approx([1e-4, 1e-4, 1e-5, 1e-6])
  assert (c.loss.mse_weight, c.loss.color_weight) == (0.1, 0.1) and c.model.kernel_init == "normal_0.02"
  assert c.data.name == "lol/v1"
  for v in VARIANTS:
    assert load_config(f"configs/neid.py:{v},demo").data.name == "lle_demo/lowlight"
    assert load_config(f"configs/neid.py:tiny,{v}").data.name == "lle_demo/lowlight"


def test_paper_model_doubles_the_input_size():
  config = load_config("configs/neid.py")
  module = neid.network(config)
  x = jnp.zeros((1, 128, 128, 3))
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, with_dr=True))
  le, dr = jax.eval_shape(lambda v: module.apply(v, x, with_dr=True), variables)
  assert le.shape == dr.shape == (1, 256, 256, 3)
  assert jax.eval_shape(lambda v: module.apply(v, jnp.zeros((1, 400, 608, 3))), variables).shape == (1, 800, 1216, 3)


def _tiny_state(variant):
  config = load_config(f"configs/neid.py:tiny,{variant}")
  method = methods.get(config)
  return config, method, method.init(jax.random.key(0))


def test_output_is_twice_the_input_and_the_baseline_matches():
  config, method, state = _tiny_state("le_dr_ff")
  x = jnp.full((2, 12, 20, 3), 0.2)
  assert method.predict(state, x).shape == (2, 24, 40, 3)
  assert method.baselines["identity"](x).shape == (2, 24, 40, 3)
  assert method.size_multiple == 2 ** (len(config.model.features) - 1)


@pytest.mark.parametrize("variant,removed", [("le_dr_ff", ("dr_head",)), ("le_dr", ("dr_head", "dr_decoder"))])
def test_detail_refinement_head_takes_no_part_in_inference(variant, removed):
  _, method, state = _tiny_state(variant)
  x = jax.random.uniform(jax.random.key(1), (1, 16, 16, 3))
  full = method.predict(state, x)
  net = state["net"]
  pruned = {k: v for k, v in net.params.items() if k not in removed}
  assert set(removed) <= set(net.params) and len(pruned) < len(net.params)
  out = method.predict({"net": net.replace(params=pruned)}, x)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(full))
  config = load_config(f"configs/neid.py:tiny,{variant}")
  assert set(neid.inference_params(net.params, config=config)) == set(pruned)
  params, apply, _ = method.networks(state)["net"]
  np.testing.assert_array_equal(np.asarray(apply(x)), np.asarray(full))


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_ablation_builds_and_trains_one_step(variant):
  config, method, state = _tiny_state(variant)
  expected = {"le_dr_ff": {"encoder", "le_decoder", "le_head", "dr_decoder", "dr_head", "ff_0"},
              "le_dr": {"encoder", "le_decoder", "le_head", "dr_decoder", "dr_head"},
              "le": {"encoder", "le_decoder", "le_head"}, "unet": {"encoder", "le_decoder", "le_head"}}[variant]
  assert set(state["net"].params) == expected
  s = config.data.input_scale
  rng = np.random.default_rng(0)
  target = rng.random((8, 32, 32, 3), dtype=np.float32)
  batch = {"input": jnp.asarray(target[:, ::s, ::s] * 0.2), "target": jnp.asarray(target),
           "input_hr": jnp.asarray(target * 0.2)}
  new, metrics = jax.jit(method.train_step)(state, batch, jax.random.key(0))
  assert np.isfinite(float(metrics["loss"]))
  assert ("mse_dr" in metrics) == (variant in ("le_dr_ff", "le_dr"))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state["net"].params, new["net"].params)
  assert all(jax.tree.leaves(changed))
  expected_loss = metrics["huber"] + 0.1 * metrics["color"] + 0.1 * metrics.get("mse_dr", 0.0)
  assert float(metrics["loss"]) == pytest.approx(float(expected_loss), rel=1e-5)


def test_huber_matches_optax():
  rng = np.random.default_rng(0)
  pred, target = rng.normal(size=(2, 5, 5, 3)) * 2, rng.normal(size=(2, 5, 5, 3))
  for delta in (1.0, 0.3):
    ref = jnp.mean(optax.huber_loss(jnp.asarray(pred), jnp.asarray(target), delta=delta))
    assert float(losses.huber(jnp.asarray(pred), jnp.asarray(target), delta=delta)) == pytest.approx(float(ref), rel=1e-6)


def test_huber_delta_one_on_unit_range_images_is_half_mse_and_delta_scales_with_the_images():
  rng = np.random.default_rng(0)
  pred, target = jnp.asarray(rng.random((2, 6, 6, 3))), jnp.asarray(rng.random((2, 6, 6, 3)))
  half_mse = 0.5 * float(losses.mse(pred, target))
  assert float(losses.huber(pred, target, delta=1.0)) == pytest.approx(half_mse, rel=1e-6)  # never robust
  assert float(losses.huber(pred, target, delta=0.3)) < 0.97 * half_mse  # residuals above 0.3: linear part
  # The same images scaled by k = 255: delta = 1 there acts as delta = 1/255 here, and the loss is k^2 larger.
  k = 255.0
  assert float(losses.huber(k * pred, k * target, delta=1.0)) == pytest.approx(
      k**2 * float(losses.huber(pred, target, delta=1.0 / k)), rel=1e-5)
  config = load_config("configs/neid.py")
  assert config.loss.huber_delta == 1.0


def _two_pixel_images(h_pred, h_target, s=(0.8, 0.5), v=(0.9, 0.7)):
  """Two-pixel RGB images [1, 1, 2, 3] with the given hues and the same saturation and value."""
  rgb = lambda h: matplotlib.colors.hsv_to_rgb(np.stack([h, s, v], axis=-1)[None, None])
  return jnp.asarray(rgb(np.asarray(h_pred))), jnp.asarray(rgb(np.asarray(h_target)))


def test_color_loss_two_pixel_values_hue_as_number_and_as_angle():
  """Hues (0.95, 0.25) against (0.05, 0.25), same saturations (so L_S = 0). As numbers (eq. 5 as written):
  cos = (0.95 * 0.05 + 0.25^2) / (|(0.95, 0.25)| |(0.05, 0.25)|) = 0.11 / 0.250450 = 0.439210, L = 0.560790.
  As angles: the first pixel's hues are 0.1 turn apart, the second's equal: cos = (cos(0.2 pi) + 1) / 2 =
  0.904508, L = 0.095492. Cosines are over each image's channel as one vector, not per pixel."""
  pred, target = _two_pixel_images((0.95, 0.25), (0.05, 0.25))
  assert float(losses.hsv_color_loss(pred, target, hue="number")) == pytest.approx(0.560790, abs=1e-5)
  assert float(losses.hsv_color_loss(pred, target, hue="angle")) == pytest.approx(0.095492, abs=1e-5)
  # Saturation term alone: saturations (0.8, 0.5) against (0.4, 0.5): 1 - 0.57 / (0.943398 * 0.640312) = 0.056400.
  pred, target = _two_pixel_images((0.3, 0.6), (0.3, 0.6), s=(0.8, 0.5))[0], _two_pixel_images(
      (0.3, 0.6), (0.3, 0.6), s=(0.4, 0.5))[0]
  for hue in ("number", "angle"):
    assert float(losses.hsv_color_loss(pred, target, hue=hue)) == pytest.approx(1 - 0.57 / (0.943398 * 0.640312), abs=2e-5)
  # A batch of two is the mean of the two images' losses (per image, not one vector over the batch).
  a, b = _two_pixel_images((0.95, 0.25), (0.05, 0.25))
  both = losses.hsv_color_loss(jnp.concatenate([a, pred]), jnp.concatenate([b, target]), hue="number")
  assert float(both) == pytest.approx((0.560790 + 1 - 0.57 / (0.943398 * 0.640312)) / 2, abs=2e-5)
  with pytest.raises(ValueError, match="loss.hue 'nope'"):
    losses.hsv_color_loss(a, b, hue="nope")
  assert load_config("configs/neid.py").loss.hue == "number"
  assert load_config("configs/neid.py:hue_angle").loss.hue == "angle"


def test_dr_branch_is_supervised_by_the_full_size_low_light_patch():
  """Default `dr_target='low'`: MSE(DR, input_hr) (sec. 2.2: super-resolution of the low-light image);
  `dr_high`: MSE(DR, normal-light target)."""
  rng = np.random.default_rng(0)
  le, dr = (jnp.asarray(rng.random((2, 8, 8, 3), dtype=np.float32)) for _ in range(2))
  batch = {"target": jnp.asarray(rng.random((2, 8, 8, 3), dtype=np.float32)),
           "input_hr": jnp.asarray(rng.random((2, 8, 8, 3), dtype=np.float32) * 0.2)}
  _, low = neid.loss_terms(le, dr, batch, config=load_config("configs/neid.py"))
  _, high = neid.loss_terms(le, dr, batch, config=load_config("configs/neid.py:dr_high"))
  assert float(low["mse_dr"]) == pytest.approx(float(jnp.mean((dr - batch["input_hr"]) ** 2)), rel=1e-6)
  assert float(high["mse_dr"]) == pytest.approx(float(jnp.mean((dr - batch["target"]) ** 2)), rel=1e-6)
  with pytest.raises(KeyError, match="input_hr"):
    neid.loss_terms(le, dr, {"target": batch["target"]}, config=load_config("configs/neid.py"))


def test_rgb_to_hsv_matches_matplotlib():
  rng = np.random.default_rng(0)
  rgb = rng.random((64, 3))
  rgb[:4] = [[0.5, 0.5, 0.5], [0, 0, 0], [1, 1, 1], [0.2, 0.2, 0.7]]
  np.testing.assert_allclose(np.asarray(color.rgb_to_hsv(rgb)), matplotlib.colors.rgb_to_hsv(rgb), atol=1e-6)


@pytest.mark.parametrize("hue", ["number", "angle"])
def test_color_loss_zero_positive_and_finite_on_grey(hue):
  loss = lambda a, b: losses.hsv_color_loss(a, b, hue=hue)
  rng = np.random.default_rng(0)
  img = jnp.asarray(rng.random((2, 8, 8, 3), dtype=np.float32))
  assert float(loss(img, img)) == pytest.approx(0.0, abs=1e-6)
  shifted = img[..., jnp.array([1, 2, 0])]  # a hue rotation by a third of a turn, same saturation
  assert float(loss(shifted, img)) > 0.05
  grey = jnp.full((2, 8, 8, 3), 0.4).at[:, :4].set(jnp.asarray(rng.random((2, 4, 8, 1)), jnp.float32))
  black = jnp.zeros((2, 8, 8, 3))
  for a, b in ((grey, img), (img, grey), (grey, grey), (black, img), (black, black)):
    value, grad = jax.value_and_grad(loss)(a, b)
    assert np.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))
  assert float(loss(grey, grey)) == pytest.approx(0.0, abs=1e-6)


def test_depth_to_space_layout():
  x = jnp.arange(2 * 2 * 12).reshape(1, 2, 2, 12).astype(jnp.float32)
  y = depth_to_space(x, 2)
  assert y.shape == (1, 4, 4, 3)
  # Output (2i + a, 2j + b, c) reads input (i, j, (a * 2 + b) * 3 + c).
  for i, j, a, b, c in ((0, 0, 0, 1, 2), (1, 0, 1, 1, 0), (1, 1, 1, 0, 1)):
    assert float(y[0, 2 * i + a, 2 * j + b, c]) == float(x[0, i, j, (a * 2 + b) * 3 + c])


def test_neid_recipe_batches_and_eval_inputs():
  config = load_config("configs/neid.py:tiny")
  ds = pipeline.train_dataset(config)
  a, b = ds[2], pipeline.train_dataset(config)[2]
  assert a["input"].shape == (8, 16, 16, 3) and a["target"].shape == (8, 32, 32, 3)
  assert a["input_hr"].shape == (8, 32, 32, 3)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  ex = pipeline.eval_examples(config)[0]
  h, w = ex["target"].shape[:2]
  assert ex["input"].shape == (-(-h // 2), -(-w // 2), 3)


def test_tiny_run_through_the_trainer_scores_at_the_target_size(tmp_path):
  config = load_config("configs/neid.py:tiny")
  train.train_and_evaluate(config, tmp_path)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["step"] == config.num_train_steps
  assert set(saved["model"]) == {"psnr", "ssim"} and set(saved["baselines"]) == {"identity"}
  assert np.isfinite(saved["model"]["psnr"]) and np.isfinite(saved["baselines"]["identity"]["psnr"])
  grids = list((tmp_path / "images").rglob("*.png"))
  assert grids


def test_up_convolution_is_a_2x2_stride_2_transposed_convolution():
  """Decoder's up-sampling (1x1 conv to 4 f + depth-to-space) equals U-Net's 2x2 stride-2 up-convolution
  y[2i + a, 2j + b] = x[i, j] @ K[a, b] with K[a, b, c, f] = W[c, (2a + b) f_out + f]."""
  rng = np.random.default_rng(0)
  c_in, f = 3, 2
  x = rng.normal(size=(1, 3, 4, c_in)).astype(np.float32)
  w = rng.normal(size=(c_in, 4 * f)).astype(np.float32)
  y = np.asarray(depth_to_space(jnp.einsum("nhwc,cf->nhwf", x, w), 2))
  k = w.reshape(c_in, 2, 2, f).transpose(1, 2, 0, 3)  # [a, b, c, f]
  ref = np.zeros((1, 6, 8, f), np.float32)
  for i in range(3):
    for j in range(4):
      for a in range(2):
        for b in range(2):
          ref[0, 2 * i + a, 2 * j + b] = x[0, i, j] @ k[a, b]
  np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


def test_bicubic_baseline_values():
  """The identity baseline upsamples 2x with Keys' cubic (a = -0.5, MATLAB's bicubic), half-pixel centres:
  output 2i reads inputs i-2..i+1 at distances 1.75, 0.75, 0.25, 1.25, with weights -0.0234375, 0.2265625,
  0.8671875, -0.0703125 (and output 2i + 1 the mirror image). A unit impulse at column 5 therefore
  becomes, from output column 7 to 14: -0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875,
  0.2265625, -0.0703125, -0.0234375; a constant stays constant up to the borders."""
  config, method, _ = _tiny_state("le_dr_ff")
  x = np.zeros((1, 4, 12, 3), np.float32)
  x[:, :, 5] = 1.0
  y = np.asarray(method.baselines["identity"](jnp.asarray(x)))
  assert y.shape == (1, 8, 24, 3) and config.data.input_scale == 2
  expected = np.zeros(24)
  expected[7:15] = [-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]
  np.testing.assert_allclose(y[0, :, :, 1], np.broadcast_to(expected, (8, 24)), atol=1e-6)
  flat = np.asarray(method.baselines["identity"](jnp.full((1, 5, 7, 3), 0.3)))
  np.testing.assert_allclose(flat, 0.3, atol=1e-6)

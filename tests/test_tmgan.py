"""tmgan (Montulet & Briassouli 2019): CIELAB, the lightness U-Net and PatchGAN, LSGAN signs, cyclic
learning rates, colour kept from the input, and the VGG loss's weights."""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.color

from lle import color, methods, optim
from lle.methods import tmgan
from lle.nn.tmgan import LightnessUNet, PatchDiscriminator
from tests.conftest import load_config


def _photo(n, seed=0):
  """A smooth random colour image with saturated and dark parts."""
  rng = np.random.default_rng(seed)
  coarse = rng.random((n // 8, n // 8, 3))
  return np.asarray(jax.image.resize(coarse, (n, n, 3), "linear"), np.float64)


def test_lab_round_trip_matches_scikit_image():
  x = _photo(64)
  x[0, :4] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1]]  # black, white, primaries
  lab = np.asarray(color.srgb_to_lab(x.astype(np.float32)))
  np.testing.assert_allclose(lab, skimage.color.rgb2lab(x), atol=2e-3)  # float32 of L, a, b in ~[-100, 100]
  np.testing.assert_allclose(np.asarray(color.lab_to_srgb(lab)), x, atol=2e-5)
  # Out-of-gamut LAB (a, b tripled) is clipped as scikit-image clips it.
  wide = skimage.color.rgb2lab(x) * np.array([1.0, 3.0, 3.0])
  with pytest.warns(UserWarning):
    want = skimage.color.lab2rgb(wide)
  np.testing.assert_allclose(np.asarray(color.lab_to_srgb(wide.astype(np.float32))), want, atol=2e-5)
  # Gradients are finite at black (the cube root's branch is masked, not differentiated at 0).
  grad = jax.grad(lambda im: color.srgb_to_lab(im).sum())(jnp.zeros((2, 2, 3)))
  assert np.isfinite(np.asarray(grad)).all()


def _unet_param_count(features, k=3):
  """By hand from the layer list: every conv has a bias, every instance norm a scale and a shift."""
  count, c = 0, 1
  for f in features:  # down blocks
    count += k * k * c * f + f + 2 * f
    c = f
  for s in reversed(features[:-1]):  # up blocks: conv to the skip's width, then concatenation
    count += k * k * c * s + s + 2 * s
    c = 2 * s
  return count + k * k * c * 1 + 1  # the last conv to L


@pytest.mark.parametrize("variant,depth", [("paper", 7), ("down8", 8)])
def test_unet_depth_sizes_and_parameter_count(variant, depth):
  config = load_config(f"configs/tmgan.py:{variant}")
  features = tuple(config.generator.features)
  assert len(features) == depth
  method = methods.get(config)
  assert method.size_multiple == 2**depth
  n = 2**depth  # the smallest input: a 1 x 1 bottleneck
  model = tmgan.generator(config)
  # Shapes only: traced, not run (op-by-op execution of a 7-8 level U-Net took most of this test's time).
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, n, n, 1)))
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables)) == _unet_param_count(features)
  out, inter = jax.eval_shape(lambda v, x: model.apply(v, x, capture_intermediates=True), variables,
                              jnp.full((1, 2 * n, 2 * n, 1), 0.3))
  assert out.shape == (1, 2 * n, 2 * n, 1)
  convs = sorted((k for k in inter["intermediates"] if k.startswith("Conv_")), key=lambda k: int(k[5:]))
  sizes = [inter["intermediates"][k]["__call__"][0].shape[1] for k in convs]
  down = [2 * n // 2**i for i in range(1, depth + 1)]
  up = [2 * n // 2**i for i in range(depth - 1, 0, -1)]
  assert sizes == down + up + [2 * n]
  # Fig. 1: the map before the last upsample is N/2 x N/2 x 32 (16 upsampled + 16 concatenated).
  assert variables["params"][convs[-1]]["kernel"].shape == (3, 3, 32, 1)
  with pytest.raises(ValueError, match=f"must divide by {2**depth}"):
    jax.eval_shape(model.apply, variables, jnp.zeros((1, n + 8, n, 1)))


@pytest.mark.parametrize("n", [256, 512])
def test_patchgan_output_is_n_over_128(n):
  config = load_config("configs/tmgan.py")
  d = tmgan.discriminator(config)
  x = jnp.zeros((2, n, n, 2))
  out = jax.eval_shape(lambda: d.apply(d.init(jax.random.key(0), x), x))
  assert out.shape == (2, n // 128, n // 128)


def _plain_discriminator(params, x, *, features, eps, slope):
  """PatchGAN by hand with lax: per block reflection pad 1, 3x3 stride-2 VALID conv + bias, from the
  second block on instance norm (biased variance over H, W per image and channel, learnt scale and
  shift), LeakyReLU; then pad, 3x3 stride-1 conv to one map."""
  def conv(h, p, stride):
    h = jnp.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    out = jax.lax.conv_general_dilated(h, p["kernel"], (stride, stride), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       precision=jax.lax.Precision.HIGHEST)
    return out + p["bias"]
  h = x
  for i in range(len(features)):
    h = conv(h, params[f"Conv_{i}"], 2)
    if i > 0:
      norm = params[f"InstanceNorm_{i - 1}"]
      mean = h.mean(axis=(1, 2), keepdims=True)
      var = ((h - mean) ** 2).mean(axis=(1, 2), keepdims=True)
      h = (h - mean) / jnp.sqrt(var + eps) * norm["scale"] + norm["bias"]
    h = jnp.where(h >= 0, h, slope * h)
  return conv(h, params[f"Conv_{len(features)}"], 1)[..., 0]


def test_patchgan_forward_matches_a_plain_lax_transcription():
  features = (4, 8, 8)
  d = PatchDiscriminator(features=features, norm_epsilon=1e-3, negative_slope=0.2)
  x = jax.random.uniform(jax.random.key(1), (2, 64, 64, 2))
  # Compiled whole here and below: op by op, each operation compiles on its own.
  params = jax.jit(d.init)(jax.random.key(0), x)["params"]
  rng = np.random.default_rng(4)  # norm parameters away from their identity start, so that they count
  params = jax.tree_util.tree_map_with_path(
      lambda path, v: v + rng.normal(0, 0.3, v.shape).astype(np.float32)
      if "InstanceNorm" in jax.tree_util.keystr(path) else v, params)
  assert sorted(params) == ["Conv_0", "Conv_1", "Conv_2", "Conv_3", "InstanceNorm_0", "InstanceNorm_1"]
  ours = np.asarray(jax.jit(d.apply)({"params": params}, x))
  plain = jax.jit(functools.partial(_plain_discriminator, features=features, eps=1e-3, slope=0.2))
  want = np.asarray(plain(params, x))
  assert ours.shape == (2, 8, 8) and want.std() > 0.1
  np.testing.assert_allclose(ours, want, atol=2e-5 * np.abs(want).max())


def _tiny(**changes):
  config = load_config("configs/tmgan.py:tiny")
  with config.unlocked():
    for key, value in changes.items():
      node = config
      *path, last = key.split(".")
      for p in path:
        node = node[p]
      node[last] = value
  return config


def _batch(config, seed=0):
  rng = np.random.default_rng(seed)
  n = config.data.crop_size
  target = np.stack([_photo(n, seed + i) for i in range(config.batch_size)]).astype(np.float32)
  return {"input": jnp.asarray(target * 0.2), "target": jnp.asarray(target)}


def _d_in(config, state, batch, fake_from):
  light_in = tmgan.lightness(batch["input"])
  g = fake_from["gen"]
  fake = tmgan.tanh_to_lightness(jax.jit(g.apply_fn)({"params": g.params}, light_in),
                                 config.generator.tanh_to_lightness)
  return (tmgan._discriminator_input(config, light_in, tmgan.lightness(batch["target"])),
          tmgan._discriminator_input(config, light_in, fake))


def test_lsgan_signs_d_step_lowers_its_loss_and_g_step_raises_ds_score():
  """Sec. 2.2: D is pushed to +1 on real and -1 on generated maps; G to +1 on its own output."""
  config = _tiny(**{"optimizer.learning_rate": 1e-3, "optimizer.schedule": "constant", "loss.mse_weight": 0.0,
                    "loss.adversarial_weight": 1.0})
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  batch = _batch(config)
  new, metrics = jax.jit(method.train_step)(state, batch, jax.random.key(1))
  d0, d1 = state["disc"], new["disc"]
  d_apply = jax.jit(d0.apply_fn)  # one compilation for every score below
  score = lambda d, x: float(d_apply({"params": d.params}, x).mean())

  real, fake_new = _d_in(config, state, batch, new)
  d_loss = lambda d: 0.5 * (np.mean((np.asarray(d_apply({"params": d.params}, real)) - 1) ** 2)
                            + np.mean((np.asarray(d_apply({"params": d.params}, fake_new)) + 1) ** 2))
  assert d_loss(d1) < d_loss(d0)  # D's step (on G_{k+1}'s output) lowers D's loss
  assert score(d1, real) - score(d1, fake_new) > score(d0, real) - score(d0, fake_new)  # real above fake
  _, fake_old = _d_in(config, state, batch, state)
  assert score(d0, fake_new) > score(d0, fake_old)  # G's step raises D_k's score on G's output
  np.testing.assert_allclose(float(metrics["d_loss"]), d_loss(d0), rtol=1e-4)  # the loss D's step saw


@pytest.mark.slow  # compiles a train step: about 60 s on a busy 2-core CPU
def test_generator_adversarial_target_is_plus_one_and_the_terms_add_up():
  """Sec. 2.2: G is scored by the LSGAN MSE of D's map on its output against +1 (the "real" value), with
  the discriminator and generator before the step; the loss is the sum of the weighted terms."""
  config = _tiny(**{"loss.mse_weight": 0.7, "loss.adversarial_weight": 0.3})
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  last = f"Conv_{len(config.discriminator.features)}"
  disc = state["disc"].params
  # D's map moved to about 2, where the candidate targets give far apart values: (2-1)^2 = 1, (2+1)^2 = 9, 2^2 = 4.
  disc = {**disc, last: {**disc[last], "bias": disc[last]["bias"] + 2.0}}
  state = dict(state, disc=state["disc"].replace(params=disc))
  batch = _batch(config)
  _, metrics = jax.jit(method.train_step)(state, batch, jax.random.key(1))
  _, fake_in = _d_in(config, state, batch, state)
  scores = np.asarray(jax.jit(state["disc"].apply_fn)({"params": disc}, fake_in))
  assert 1.5 < scores.mean() < 2.5
  np.testing.assert_allclose(float(metrics["g_adversarial"]), np.mean((scores - 1.0) ** 2), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["weighted_adversarial"]), 0.3 * float(metrics["g_adversarial"]), rtol=1e-6)
  np.testing.assert_allclose(float(metrics["weighted_mse"]), 0.7 * float(metrics["mse"]), rtol=1e-6)
  np.testing.assert_allclose(float(metrics["g_loss"]),
                             float(metrics["weighted_mse"]) + float(metrics["weighted_adversarial"]), rtol=1e-6)


def test_generator_mse_falls_over_steps():
  config = _tiny(**{"optimizer.schedule": "constant", "optimizer.learning_rate": 2e-3})
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  step = jax.jit(method.train_step)
  batch = _batch(config)
  losses = []
  for i in range(15):
    state, metrics = step(state, batch, jax.random.key(i))
    losses.append(float(metrics["mse"]))
  assert losses[-1] < 0.5 * losses[0], losses


def test_output_keeps_the_inputs_a_and_b():
  config = _tiny()
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  x = (_photo(32, 5) * 0.6 + 0.2).astype(np.float32)  # mid-tones: no channel clipped after a new L
  out = np.asarray(method.predict(state, jnp.asarray(x[None])))[0]
  assert out.shape == x.shape
  lab_in, lab_out = skimage.color.rgb2lab(x), skimage.color.rgb2lab(out)
  inside = np.all((out > 1e-3) & (out < 1 - 1e-3), axis=-1)
  assert inside.mean() > 0.5
  np.testing.assert_allclose(lab_out[inside][:, 1:], lab_in[inside][:, 1:], atol=0.05)
  assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() > 1.0  # L is the network's, not the input's


def test_scaled_chroma_restores_a_linear_darkening_and_scales_a_b_with_the_lightness_gain():
  x = (_photo(32, 6) * 0.7 + 0.15).astype(np.float32)
  d = 8.0
  dark = np.asarray(color.linear_to_srgb(color.srgb_to_linear(x) / d))  # the same scene, d times less light
  light = tmgan.lightness(jnp.asarray(x))
  restored = np.asarray(tmgan.with_lightness(jnp.asarray(dark), light, chroma="scaled", chroma_floor=0.0))
  np.testing.assert_allclose(restored, x, atol=2e-4)  # the scene's own colours come back
  kept = np.asarray(tmgan.with_lightness(jnp.asarray(dark), light, chroma="input"))
  chroma = lambda im: np.hypot(*np.moveaxis(skimage.color.rgb2lab(im)[..., 1:], -1, 0)).mean()
  assert chroma(kept) < 0.6 * chroma(x)  # the input's a, b kept: paler by about d^(-1/3) = 0.5
  # Any new L: L is the new one, and where both lightnesses lie in CIELAB's cube-root part (L > 8), a and b
  # are the input's times (L_new + 16) / (L_in + 16).
  new_light = jnp.asarray(np.random.default_rng(1).uniform(0.3, 0.8, x.shape[:2] + (1,)), jnp.float32)
  out = np.asarray(tmgan.with_lightness(jnp.asarray(x), new_light, chroma="scaled", chroma_floor=0.0))
  lab_in, lab_out = skimage.color.rgb2lab(x), skimage.color.rgb2lab(out)
  inside = np.all((out > 1e-3) & (out < 1 - 1e-3), axis=-1)
  assert inside.mean() > 0.5
  gain = (100.0 * np.asarray(new_light)[..., 0] + 16.0) / (lab_in[..., 0] + 16.0)
  np.testing.assert_allclose(lab_out[inside][:, 0], 100.0 * np.asarray(new_light)[inside][:, 0], atol=0.02)
  np.testing.assert_allclose(lab_out[inside][:, 1:], lab_in[inside][:, 1:] * gain[inside][:, None], atol=0.05)
  # A black input pixel has no colour to scale: with the floor it comes out grey at the new L.
  black = np.zeros((1, 1, 3), np.float32)
  grey = np.asarray(tmgan.with_lightness(jnp.asarray(black), jnp.full((1, 1, 1), 0.5), chroma="scaled",
                                         chroma_floor=1 / (255 * 12.92)))
  np.testing.assert_allclose(skimage.color.rgb2lab(grey)[0, 0], [50.0, 0.0, 0.0], atol=0.05)
  with pytest.raises(ValueError, match="generator.chroma 'hue'"):
    tmgan.with_lightness(jnp.asarray(x), light, chroma="hue")


def test_predict_follows_the_chroma_setting():
  config = _tiny()
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  x = jnp.asarray((_photo(32, 5) * 0.3)[None].astype(np.float32))
  light = tmgan.tanh_to_lightness(state["gen"].apply_fn({"params": state["gen"].params}, tmgan.lightness(x)),
                                  "affine")
  scaled = _tiny(**{"generator.chroma": "scaled"})
  np.testing.assert_allclose(np.asarray(methods.get(scaled).predict(state, x)),
                             np.asarray(tmgan.with_lightness(x, light, chroma="scaled",
                                                             chroma_floor=scaled.generator.chroma_floor)), atol=1e-6)
  assert np.abs(np.asarray(method.predict(state, x)) - np.asarray(methods.get(scaled).predict(state, x))).max() > 0.01


@pytest.mark.parametrize("shape,step,want", [
    ("cosine", 0, 0.01), ("cosine", 5, 0.005), ("cosine", 10, 0.009), ("cosine", 15, 0.0045),
    ("cosine", 20, 0.0081), ("triangular", 0, 0.0), ("triangular", 5, 0.01), ("triangular", 10, 0.0),
    ("triangular", 15, 0.009), ("triangular", 17, 0.009 * 0.6), ("sawtooth", 4, 0.006),
    ("sawtooth", 10, 0.009), ("exponential", 5, 0.01 * 0.1**0.5), ("exponential", 10, 0.009),
    ("exponential", 29, 0.0081 * 0.1**0.9)])
def test_cyclic_schedule_values(shape, step, want):
  fraction = 0.1 if shape == "exponential" else 0.0
  fn = optim.cyclic_schedule(0.01, 10, shape=shape, decay=0.9, min_fraction=fraction)
  np.testing.assert_allclose(float(fn(step)), want, rtol=1e-5, atol=1e-9)


def test_cyclic_schedule_growing_cycles_and_floor():
  # cycle_mult 2: cycles [0, 10), [10, 30), [30, 70); the floor is min_fraction of each cycle's peak.
  fn = optim.cyclic_schedule(1.0, 10, shape="cosine", decay=0.5, cycle_mult=2.0, min_fraction=0.2)
  for step, want in [(0, 1.0), (10, 0.5), (20, 0.1 + 0.4 * 0.5), (29, None), (30, 0.25), (50, 0.05 + 0.2 * 0.5),
                     (70, 0.125)]:
    value = float(fn(step))
    if want is None:
      assert 0.1 < value < 0.11  # near the end of cycle 1: close to its floor 0.1
    else:
      np.testing.assert_allclose(value, want, rtol=1e-5)
  with pytest.raises(ValueError, match="cycle_shape"):
    optim.cyclic_schedule(1.0, 10, shape="square")
  with pytest.raises(ValueError, match="min_fraction"):
    optim.cyclic_schedule(1.0, 10, shape="exponential")


def test_sgdr_variant_matches_optax_sgdr_schedule():
  """`sgdr`: cosine cycles 1.5x longer each, peaks x 0.9, an absolute floor of 1e-5: optax's sgdr_schedule
  of warm-up-free cosine pieces (cycle_steps 8: cycles of 8, 12, 18, 27 steps)."""
  import optax
  opt = load_config("configs/tmgan.py:sgdr").optimizer
  assert (opt.cycle_shape, opt.cycle_mult, opt.decay_factor, opt.min_learning_rate) == ("cosine", 1.5, 0.9, 1e-5)
  with opt.unlocked():
    opt.cycle_steps = 8
  ours = optim.schedule(opt)
  pieces = [dict(init_value=0.01 * 0.9**k, peak_value=0.01 * 0.9**k, warmup_steps=0, decay_steps=n, end_value=1e-5)
            for k, n in enumerate((8, 12, 18, 27))]
  want = optax.sgdr_schedule(pieces)
  steps = np.arange(65)
  np.testing.assert_allclose([float(ours(t)) for t in steps], [float(want(t)) for t in steps], rtol=1e-5, atol=1e-9)
  # The end of the first cycle falls towards 1e-5 (not 0), then the second restarts at 0.9 x 0.01.
  assert float(ours(7)) == pytest.approx(1e-5 + (0.01 - 1e-5) * 0.5 * (1 + np.cos(7 * np.pi / 8)), rel=1e-5)
  assert float(ours(8)) == pytest.approx(0.009, rel=1e-6)


def test_lol_is_evaluation_only(tmp_path):
  from lle import train
  config = load_config("configs/tmgan.py:tiny,lol")
  with pytest.raises(train.EvaluationOnlyError, match=r"smaller than the 512x512 training crop.*--mode=eval|"
                                                      r"smaller than the 512x512 training crop.*launch.sh eval"):
    train.train_and_evaluate(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()  # stopped before anything was written


def test_paper_config_without_vgg_weights_stops_with_how_to_get_them(tmp_path, monkeypatch):
  monkeypatch.setenv("LLE_WEIGHTS_DIR", str(tmp_path))
  config = load_config("configs/tmgan.py")
  assert config.loss.perceptual_weight > 0
  with pytest.raises(FileNotFoundError, match=r"vgg19_keras.*python -m lle\.weights vgg19 --from"):
    methods.get(config).init(jax.random.key(0))


def test_vgg_loss_on_lightness_with_converted_weights(fake_vgg_weights):
  """The paper's loss path: VGG-19 up to the fifth Keras layer (relu2_2), on the lightness, with weights
  converted by lle.weights; only the convolutions it uses ride in the state."""
  config = _tiny(**{"loss.perceptual_weight": 1e-3})
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  assert sorted(state["vgg"]) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2"]
  new, metrics = jax.jit(method.train_step)(state, _batch(config), jax.random.key(1))
  assert np.isfinite(float(metrics["perceptual"])) and float(metrics["perceptual"]) > 0
  np.testing.assert_allclose(float(metrics["weighted_perceptual"]), 1e-3 * float(metrics["perceptual"]), rtol=1e-6)
  np.testing.assert_array_equal(new["vgg"]["conv2_2"]["kernel"], state["vgg"]["conv2_2"]["kernel"])


@pytest.mark.slow  # a whole tiny run with VGG: about 140 s on a busy 2-core CPU
def test_a_run_logs_the_three_loss_terms_at_its_first_step(fake_vgg_weights, tmp_path, tfds_data_dir):
  """The trainer logs the first step alone (then every log_every_steps): metrics.jsonl opens with the
  generator's three terms, raw and weighted, at initialisation, with VGG weights converted by lle.weights."""
  import json
  from lle import train
  config = _tiny(**{"loss.perceptual_weight": 1e-3, "num_train_steps": 3, "log_every_steps": 2,
                    "eval_every_steps": 3, "checkpoint_every_steps": 3})
  train.train_and_evaluate(config, tmp_path)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train_records = [r for r in records if "train/g_loss" in r]
  assert [r["step"] for r in train_records] == [1, 2, 3]
  first = train_records[0]
  for term, weight in (("mse", 1.0), ("perceptual", 1e-3), ("g_adversarial", config.loss.adversarial_weight)):
    name = "weighted_" + term.removeprefix("g_")
    assert first[f"train/{term}"] > 0
    np.testing.assert_allclose(first[f"train/{name}"], weight * first[f"train/{term}"], rtol=1e-5)
  np.testing.assert_allclose(first["train/g_loss"], sum(first[f"train/weighted_{t}"] for t in
                                                         ("mse", "perceptual", "adversarial")), rtol=1e-5)


def test_held_out_inputs_are_darkened_once_by_name(tfds_data_dir):
  from lle.data import montulet, pipeline
  config = _tiny(**{"data.darken_eval": True, "data.darken_min": 1, "data.darken_max": 128})
  a, b = pipeline.eval_set(config), pipeline.eval_set(config)
  ex_a, ex_b = next(iter(a)), next(iter(b))
  np.testing.assert_array_equal(ex_a["input"], ex_b["input"])
  plain = next(iter(pipeline.eval_set(_tiny())))
  d = montulet.eval_divisor(ex_a["name"], config.seed, 1, 128)
  codes = ex_a["input"] * 255.0  # the saved 8-bit image (sec. 4), read back as k / 255
  np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
  np.testing.assert_allclose(ex_a["input"], montulet.darken(plain["input"], d), atol=0.5 / 255 + 1e-6)
  floats = next(iter(pipeline.eval_set(_tiny(**{"data.darken_eval": True, "data.darken_quantize_8bit": False}))))
  np.testing.assert_allclose(floats["input"], montulet.darken(plain["input"], d), atol=1e-6)
  divisors = {montulet.eval_divisor(f"a{i:04d}", 0, 1, 128) for i in range(200)}
  assert min(divisors) >= 1 and max(divisors) <= 128 and len(divisors) > 60


def test_cyclic_lr_sweep_runs_build_their_schedules():
  """Every run of sweeps/tmgan_cyclic_lr.yaml: a cyclic schedule that starts at its peak (or, triangular,
  at its floor) and restarts at decay_factor x the previous peak."""
  from lle import sweep
  from tests.conftest import REPO
  runs = sweep.expand(sweep.load_sweep(os.path.join(REPO, "sweeps", "tmgan_cyclic_lr.yaml")))
  assert len(runs) == 4 * 4 * 3 * 3
  shapes, configs = set(), {}
  for run in runs:
    config = load_config(run["config"])
    opt = config.optimizer
    with opt.unlocked():
      for key, value in run.items():
        if key.startswith("config.optimizer."):
          opt[key[len("config.optimizer."):]] = value
    fn = optim.schedule(opt)
    # Cycle k starts at cycle_steps (1 + m + ... + m^(k-1)), at its floor (triangular) or at its peak.
    for k, start in enumerate((0, opt.cycle_steps, opt.cycle_steps * (1 + opt.cycle_mult))):
      top = 0.01 * opt.decay_factor**k
      floor = opt.cycle_min_fraction * top + opt.min_learning_rate
      want = floor if opt.cycle_shape == "triangular" else top
      np.testing.assert_allclose(float(fn(int(start))), want, rtol=1e-4, err_msg=f"{run} cycle {k}")
    shapes.add(opt.cycle_shape)
    configs[run["config"]] = (config.loss.mse_weight, config.batch_size, opt.b1, opt.cycle_mult)
  assert shapes == set(optim.CYCLE_SHAPES)
  assert configs == {"configs/tmgan.py": (1.0, 8, 0.9, 1.0), "configs/tmgan.py:sgdr": (1.0, 8, 0.9, 1.5),
                     "configs/tmgan.py:adv_vgg": (0.0, 8, 0.9, 1.0), "configs/tmgan.py:keras_gan": (1.0, 1, 0.5, 1.0)}


def test_enhance_runs_the_whole_image_in_one_pass():
  """No tiling for tmgan (instance norm is image-global): enhance pads to the size multiple, runs one pass
  and crops back, and the result is the padded image's one-pass output."""
  from lle import enhance, tiling
  config = _tiny()
  method = methods.get(config)
  assert method.tiling is None
  state = method.init(jax.random.key(0))
  photo = (_photo(64, 3)[:50, :37] * 255).astype(np.uint8)
  out = enhance.Enhancer(config, method, state, tile=16, batch=1)(photo)[".png"]
  assert out.shape == photo.shape and out.dtype == np.uint8
  padded = tiling.to_float(tiling.pad_to_multiple(photo, method.size_multiple))[None]
  want = np.asarray(method.predict(state, jnp.asarray(padded)))[0, :50, :37]
  np.testing.assert_array_equal(out, np.round(np.clip(want, 0, 1) * 255).astype(np.uint8))

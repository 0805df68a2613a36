import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import baselines, color, losses, methods
from lle.methods import itmn
from tests.conftest import load_config


def _batch(config, seed=0):
  rng = np.random.default_rng(seed)
  shape = (config.batch_size, config.data.crop_size, config.data.crop_size, 3)
  ldr = rng.random(shape, dtype=np.float32)
  return {"input": jnp.asarray(ldr), "target": jnp.asarray(ldr**2)}


def _prob_fake(disc, images):
  logits, _ = itmn._apply_train(disc, disc.params, images)
  return float(jax.nn.sigmoid(logits).mean())


@pytest.mark.parametrize("variant", ["tiny", "tiny,nonsat", "tiny,joint_bn"])
def test_generator_step_lowers_the_discriminators_fake_score(variant):
  """Eq. 3-4 sign convention: minimising R over G lowers D_k(G(L)), D's probability of 'generated'; so does
  the non-saturating form, and so do both with D's joint batch statistics."""
  config = load_config(f"configs/itmn.py:{variant}")
  with config.unlocked():
    config.loss.lam = 0.0  # isolate the regulariser's gradient
    config.optimizer.learning_rate = 1e-2
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  batch = _batch(config)
  before = _prob_fake(state["disc"], itmn._apply_train(state["gen"], state["gen"].params, batch["input"])[0])
  new_state, _ = method.train_step(state, batch, jax.random.key(1))
  after = _prob_fake(state["disc"], itmn._apply_train(new_state["gen"], new_state["gen"].params, batch["input"])[0])
  assert after < before - 1e-3


def test_discriminator_step_raises_its_fake_score_on_generated_images():
  config = load_config("configs/itmn.py:tiny")
  with config.unlocked():
    config.optimizer.learning_rate = 1e-2
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  batch = _batch(config)
  new_state, metrics = method.train_step(state, batch, jax.random.key(1))
  fake = itmn._apply_train(new_state["gen"], new_state["gen"].params, batch["input"])[0]
  assert _prob_fake(new_state["disc"], fake) > _prob_fake(state["disc"], fake)
  regularizer = lambda disc: float(losses.itmn_regularizer(itmn._apply_train(disc, disc.params, batch["target"])[0],
                                                          itmn._apply_train(disc, disc.params, fake)[0]))
  assert regularizer(new_state["disc"]) > regularizer(state["disc"])  # D ascends R (eq. 4)
  assert set(metrics) >= {"g_loss", "d_loss", "mse", "dmse", "g_adversarial"}


def test_noadvreg_has_no_discriminator_and_content_loss_falls():
  config = load_config("configs/itmn.py:tiny,noadvreg")
  with config.unlocked():
    config.optimizer.learning_rate = 3e-3
    config.loss.alpha = 1.0  # random-noise batches: keep MSE visible next to dMSE
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  assert set(state) == {"gen"}
  step = jax.jit(method.train_step)
  batch = _batch(config)
  first = None
  for i in range(20):
    state, metrics = step(state, batch, jax.random.key(i))
    first = first if first is not None else float(metrics["content"])
  assert float(metrics["content"]) < 0.85 * first


def test_generator_output_shape_and_baselines():
  config = load_config("configs/itmn.py:tiny")
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  x = jnp.full((2, 8, 12, 3), 0.5)
  assert method.predict(state, x).shape == (2, 8, 12, 3)
  assert method.size_multiple == 4
  assert method.baselines["identity"](x).shape == x.shape  # its value: tests/test_conventions.py
  inv = method.baselines["inverse_reinhard"](x)
  assert inv.shape == x.shape and float(inv.min()) > 0 and float(inv.max()) < 1


def test_non_saturating_form_keeps_the_gradient_where_the_saturating_one_vanishes():
  """At D(G(L)) = sigmoid(6) (D sure that G's images are generated), d/dlogit of E[log D] is
  (1 - sigmoid(6)) / n = 0.00247 / n, and of -E[log(1 - D)] it is sigmoid(6) / n = 0.99753 / n."""
  logits = jnp.full((4,), 6.0)
  sat = jax.grad(lambda z: losses.itmn_generator_adversarial(z, form="saturating"))(logits)
  nonsat = jax.grad(lambda z: losses.itmn_generator_adversarial(z, form="non_saturating"))(logits)
  np.testing.assert_allclose(np.asarray(sat), 0.0024726 / 4, rtol=1e-4)
  np.testing.assert_allclose(np.asarray(nonsat), 0.9975274 / 4, rtol=1e-6)
  # Values: log sigmoid(6) = -0.0024756; -log(1 - sigmoid(6)) = softplus(6) = 6.0024756.
  assert float(losses.itmn_generator_adversarial(logits, form="saturating")) == pytest.approx(-0.0024756, rel=1e-4)
  assert float(losses.itmn_generator_adversarial(logits, form="non_saturating")) == pytest.approx(6.0024756, rel=1e-6)
  # With real logits, the saturating form is R of eq. 3 whole: + E[log(1 - D(H))] = log sigmoid(-l_real).
  r = losses.itmn_generator_adversarial(logits, form="saturating", real_logits=jnp.zeros(4))
  assert float(r) == pytest.approx(-0.0024756 + np.log(0.5), rel=1e-5)
  with pytest.raises(ValueError, match="generator_adversarial 'nope'"):
    losses.itmn_generator_adversarial(logits, form="nope")


def _first_bn_mean(disc_params, images):
  """Batch mean of D's first convolution (4x4, stride 2, padding 1, no bias), written out with lax."""
  kernel = disc_params["Conv_0"]["kernel"]
  out = jax.lax.conv_general_dilated(images, kernel, (2, 2), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return np.asarray(out.mean(axis=(0, 1, 2)))


@pytest.mark.parametrize("batches", ["separate", "joint"])
def test_discriminator_batch_statistics_are_separate_or_joint(batches):
  """D's first batch norm after one D step (momentum m = 0.9, from zero): 'joint' updates once with the mean
  over [real; fake], (1 - m) mu_joint; 'separate' twice, real then fake: m (1 - m) mu_real + (1 - m) mu_fake."""
  config = load_config("configs/itmn.py:tiny")
  with config.unlocked():
    config.discriminator.batches = batches
  method = methods.get(config)
  state = method.init(jax.random.key(0))
  batch = _batch(config)
  new_state, _ = method.train_step(state, batch, jax.random.key(1))
  fake = itmn._apply_train(new_state["gen"], new_state["gen"].params, batch["input"])[0]  # G_{k+1}(L)
  d_params = state["disc"].params  # the statistics come from the forward pass before D's update
  mu_real, mu_fake = _first_bn_mean(d_params, batch["target"]), _first_bn_mean(d_params, fake)
  m = config.discriminator.bn_momentum
  expected = (1 - m) * (mu_real + mu_fake) / 2 if batches == "joint" else m * (1 - m) * mu_real + (1 - m) * mu_fake
  got = np.asarray(new_state["disc"].batch_stats["BatchNorm_0"]["mean"])
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
  assert np.abs(mu_real - mu_fake).max() > 1e-3  # the two readings differ on this batch


def _srgb_encode(linear):
  """IEC 61966-2-1, written out (the inverse of what the baseline decodes)."""
  linear = np.asarray(linear, np.float64)
  return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def test_inverse_reinhard_baseline_values():
  """LDR -> sRGB decode -> L = L_d / (1 - L_d) on luminance, RGB scaled by L / L_d -> x nits_per_unit -> PQ.
  With 100 cd/m^2 per unit: a grey of linear 0.5 gives L = 1, 100 cd/m^2, PQ 0.508078; linear 10/11 gives
  L = 10, 1000 cd/m^2, PQ 0.751827 (SMPTE ST 2084 reference points); a colour keeps its RGB ratios:
  linear (0.6, 0.4, 0.2) has L_d = 0.42808, so every channel is scaled by 1 / (1 - L_d) = 1.748496."""
  linear = np.asarray([[0.5, 0.5, 0.5], [10 / 11] * 3, [0.6, 0.4, 0.2]])
  ldr = jnp.asarray(_srgb_encode(linear)[None, None], jnp.float32)
  out = np.asarray(baselines.inverse_reinhard(ldr, nits_per_unit=100.0))[0, 0]
  np.testing.assert_allclose(out[0], 0.508078, atol=2e-5)
  np.testing.assert_allclose(out[1], 0.751827, atol=2e-5)
  nits = np.asarray(color.pq_decode(jnp.asarray(out[2])))
  np.testing.assert_allclose(nits, 100.0 * 1.748496 * linear[2], rtol=2e-4)
  config = load_config("configs/itmn.py:tiny")
  baseline = methods.get(config).baselines["inverse_reinhard"]
  np.testing.assert_allclose(np.asarray(baseline(ldr))[0, 0, 0], float(color.pq_encode(200.0)), atol=2e-5)
  assert config.eval.baselines.inverse_reinhard_nits_per_unit == 200.0


def test_content_loss_scaling_is_per_element_means_and_the_paper_alpha_hides_brightness():
  """The chosen scaling of eq. 2 (per-element means on the PQ-coded image, `loss.reduction='mean'`), pinned
  on 512x512 errors. A brightness offset of 0.1 costs MSE 0.01 and dMSE 0; a +-0.001 checkerboard costs
  MSE 1e-6 and dMSE 2 x 0.002^2 = 8e-6 (every difference is 0.002). With the paper's alpha = 1e5 the
  content loss prices the invisible checkerboard at 0.8, 80 x the visible offset (0.01); per-image sums
  keep that ratio within (W - 1) / W."""
  config = load_config("configs/itmn.py")
  assert (config.loss.reduction, config.loss.alpha, config.loss.lam, config.data.target_encoding) == (
      "mean", 1e5, 1e4, "pq")
  target = jnp.full((1, 512, 512, 3), 0.5)
  offset = target + 0.1
  checker = target + 0.001 * jnp.asarray((-1.0) ** np.add.outer(np.arange(512), np.arange(512)))[None, :, :, None]
  content = lambda pred, reduction: (losses.mse(pred, target, reduction=reduction)
                                     + config.loss.alpha * losses.dmse(pred, target, reduction=reduction))
  assert float(losses.mse(offset, target)) == pytest.approx(0.01, rel=1e-5)
  assert float(losses.dmse(offset, target)) == pytest.approx(0.0, abs=1e-10)
  assert float(losses.mse(checker, target)) == pytest.approx(1e-6, rel=1e-3)
  assert float(losses.dmse(checker, target)) == pytest.approx(8e-6, rel=1e-3)
  assert float(content(checker, "mean")) / float(content(offset, "mean")) == pytest.approx(80.0, rel=1e-3)
  ratio_sum = float(content(checker, "sum")) / float(content(offset, "sum"))
  assert ratio_sum == pytest.approx(80.0 * 511 / 512, rel=1e-3)

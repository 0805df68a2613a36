import jax
import jax.numpy as jnp
import numpy as np

from lle import losses, methods
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


def test_generator_step_lowers_the_discriminators_fake_score():
  """Eq. 3-4 sign convention: minimising R over G lowers D_k(G(L)), D's probability of 'generated'."""
  config = load_config("configs/itmn.py:tiny")
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
  assert set(metrics) >= {"g_loss", "d_loss", "mse", "dmse", "g_regularizer"}


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
  assert method.baselines["identity"](x) is x
  inv = method.baselines["inverse_reinhard"](x)
  assert inv.shape == x.shape and float(inv.min()) > 0 and float(inv.max()) < 1

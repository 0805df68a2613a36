"""Optimisers and learning-rate schedules, built from a config block so that sweeps can reach them."""
import optax


def schedule(opt_config):
  """'constant'; 'step': lr * factor^floor(step / every) (a staircase); 'exponential': the same decay
  applied continuously; 'piecewise': lr * product of the factors of the boundaries passed."""
  lr = opt_config.learning_rate
  kind = opt_config.schedule
  if kind == "constant":
    return optax.constant_schedule(lr)
  if kind in ("step", "exponential"):
    return optax.exponential_decay(lr, transition_steps=opt_config.decay_every,
                                   decay_rate=opt_config.decay_factor, staircase=kind == "step")
  if kind == "piecewise":
    return optax.piecewise_constant_schedule(
        lr, {int(b): float(f) for b, f in zip(opt_config.boundaries, opt_config.boundary_factors)})
  raise ValueError(f"unknown optimizer.schedule {kind!r}; expected constant, step, exponential or piecewise")


def make(opt_config) -> optax.GradientTransformation:
  lr = schedule(opt_config)
  if opt_config.name == "rmsprop":
    return optax.rmsprop(lr, decay=opt_config.rmsprop_decay, eps=opt_config.eps)
  if opt_config.name == "adam":
    return optax.adam(lr, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps)
  raise ValueError(f"unknown optimizer.name {opt_config.name!r}; expected 'rmsprop' or 'adam'")

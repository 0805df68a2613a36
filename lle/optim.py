"""Optimisers and learning-rate schedules, built from a config block so that sweeps can reach them."""
import jax.numpy as jnp
import optax

CYCLE_SHAPES = ("triangular", "cosine", "exponential", "sawtooth")


def cyclic_schedule(peak: float, cycle_steps: int, *, shape: str, decay: float = 1.0,
                    cycle_mult: float = 1.0, min_fraction: float = 0.0, min_value: float = 0.0) -> optax.Schedule:
  """A cyclic learning rate whose restart point falls: cycle k (from 0) lasts cycle_steps * cycle_mult^k
  steps and peaks at top = peak * decay^k; within a cycle, with u in [0, 1) its elapsed fraction and
  floor = min_fraction * top + min_value (a share of the cycle's peak, an absolute rate, or both), the
  rate is

    triangular   floor + (top - floor) (1 - |2u - 1|): up from the floor to the peak and back (Smith 2017,
                 "triangular", with the peak decayed per cycle as his "exp_range" does);
    cosine       floor + (top - floor) (1 + cos(pi u)) / 2: warm restarts (Loshchilov & Hutter 2017, SGDR;
                 `decay` is tf.train.cosine_decay_restarts' m_mul, `cycle_mult` its t_mul);
    exponential  top * (floor / top)^u: an exponential fall from the peak to the floor, then a restart
                 (the floor must be > 0);
    sawtooth     top - (top - floor) u: a linear fall from the peak to the floor, then a restart.

  Montulet & Briassouli 2019 sec. 4.1 ("cyclic, with a decreasing reset point", decay factor 0.9) name
  no shape; any of these with decay 0.9 reads the text. SGDR as Loshchilov & Hutter ran it is `cosine`
  with cycle_mult > 1 and an absolute floor (their eta_min): min_fraction 0, min_value eta_min; optax's
  `sgdr_schedule` of `warmup_cosine_decay_schedule` pieces without warm-up gives the same values.
  """
  if shape not in CYCLE_SHAPES:
    raise ValueError(f"unknown optimizer.cycle_shape {shape!r}; expected one of {CYCLE_SHAPES}")
  if cycle_steps <= 0 or cycle_mult < 1.0:
    raise ValueError(f"cyclic schedule needs cycle_steps > 0 and cycle_mult >= 1, got {cycle_steps}, {cycle_mult}")
  if min_fraction < 0.0 or min_value < 0.0 or min_fraction > 1.0:
    raise ValueError(f"cyclic schedule needs 0 <= min_fraction <= 1 and min_value >= 0, got {min_fraction}, "
                     f"{min_value}")
  if shape == "exponential" and not (min_fraction > 0.0 or min_value > 0.0):
    raise ValueError("the exponential cycle falls to min_fraction * peak + min_value: it needs min_fraction "
                     "> 0 or min_value > 0, got both 0")

  def start_of(k):  # first step of cycle k
    return k * cycle_steps if cycle_mult == 1.0 else cycle_steps * (cycle_mult**k - 1.0) / (cycle_mult - 1.0)

  def schedule(step):
    t = jnp.asarray(step, jnp.float32)
    if cycle_mult == 1.0:
      k = jnp.floor(t / cycle_steps)
    else:
      k = jnp.floor(jnp.log1p(t / cycle_steps * (cycle_mult - 1.0)) / jnp.log(cycle_mult))
      # The logarithm may land a hair off an integer at a cycle's first step: settle k exactly.
      k = jnp.where(start_of(k + 1.0) <= t, k + 1.0, k)
      k = jnp.where(start_of(k) > t, k - 1.0, k)
    u = (t - start_of(k)) / (cycle_steps * cycle_mult**k)
    top = peak * decay**k
    floor = min_fraction * top + min_value
    if shape == "triangular":
      return floor + (top - floor) * (1.0 - jnp.abs(2.0 * u - 1.0))
    if shape == "cosine":
      return floor + (top - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * u))
    if shape == "exponential":
      return top * (floor / top)**u
    return top - (top - floor) * u

  return schedule


def schedule(opt_config):
  """'constant'; 'step': lr * factor^floor(step / every) (a staircase); 'exponential': the same decay
  applied continuously; 'piecewise': lr * product of the factors of the boundaries passed; 'cyclic':
  `cyclic_schedule` with peak lr, cycle_steps, cycle_shape, decay_factor (per restart), cycle_mult,
  cycle_min_fraction and min_learning_rate (an absolute floor; 0 where a config has none)."""
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
  if kind == "cyclic":
    return cyclic_schedule(lr, opt_config.cycle_steps, shape=opt_config.cycle_shape,
                           decay=opt_config.decay_factor, cycle_mult=opt_config.cycle_mult,
                           min_fraction=opt_config.cycle_min_fraction,
                           min_value=opt_config.get("min_learning_rate", 0.0))
  raise ValueError(f"unknown optimizer.schedule {kind!r}; expected constant, step, exponential, piecewise or cyclic")


def make(opt_config) -> optax.GradientTransformation:
  lr = schedule(opt_config)
  if opt_config.name == "rmsprop":
    return optax.rmsprop(lr, decay=opt_config.rmsprop_decay, eps=opt_config.eps)
  if opt_config.name == "adam":
    return optax.adam(lr, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps)
  raise ValueError(f"unknown optimizer.name {opt_config.name!r}; expected 'rmsprop' or 'adam'")

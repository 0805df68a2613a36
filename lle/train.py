"""The one trainer: builds any method's state, runs its jitted step data-parallel over every device of
every host, evaluates, checkpoints with Orbax, resumes, and logs. It knows nothing paper-specific.
"""
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from lle import evaluate as evaluation
from lle import methods
from lle.data import pipeline
from lle.logger import RunLogger


class NonFiniteLossError(FloatingPointError):
  pass


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over every device of every host (or `devices`), with one `data` axis."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def checkpoint_manager(workdir, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True)
  return ocp.CheckpointManager(epath.Path(workdir).absolute() / "checkpoints", options=options)


def init_state(method, config, mesh):
  """Replicated initial state, and its abstract form (shapes + shardings) for Orbax restores."""
  replicated = NamedSharding(mesh, P())
  rng = jax.random.fold_in(jax.random.key(config.seed), 0)
  init = jax.jit(method.init, out_shardings=replicated)
  abstract = jax.eval_shape(method.init, rng)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), abstract)
  return init(rng), abstract


def restore(manager, abstract_state, step=None):
  step = manager.latest_step() if step is None else step
  if step is None:
    return None, None
  if step not in manager.all_steps():
    raise FileNotFoundError(f"no checkpoint for step {step} in {manager.directory}; "
                            f"saved steps: {sorted(manager.all_steps())}")
  return manager.restore(step, args=ocp.args.StandardRestore(abstract_state)), step


def _with_finiteness(train_step):
  """Adds `state_is_finite` to a step's metrics: a loss is computed from the state *before* the update,
  so only this tells whether the state about to be checkpointed is finite."""

  def step_fn(state, batch, rng):
    state, metrics = train_step(state, batch, rng)
    finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return state, {**metrics, "state_is_finite": jnp.all(jnp.stack(finite)).astype(jnp.float32)}

  return step_fn


def _check_finite(step, records):
  for offset, values in enumerate(records):
    bad = {k: v for k, v in values.items() if not np.isfinite(v)}
    if values.get("state_is_finite", 1.0) != 1.0:
      bad["state_is_finite"] = False
    if bad:
      raise NonFiniteLossError(f"non-finite values at step {step - len(records) + 1 + offset}: {bad}; "
                               "stopping, the last good checkpoint is kept")


def _mean(records):
  return {k: float(np.mean([r[k] for r in records])) for k in records[0]}


def write_config(workdir, config):
  if jax.process_index() == 0:
    path = epath.Path(workdir) / "config.json"
    tmp = path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2, default=str))
    tmp.replace(path)


def train_and_evaluate(config, workdir, *, devices=None) -> dict | None:
  """Trains `config.method` to `config.num_train_steps`, resuming from the workdir's latest checkpoint.

  Returns the final results (as written to results.json) on process 0.
  """
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  write_config(workdir, config)
  mesh = make_mesh(devices)
  if config.batch_size % mesh.size:
    raise ValueError(f"config.batch_size={config.batch_size} must divide by the {mesh.size} devices")
  data_sharding = NamedSharding(mesh, P("data"))
  replicated = NamedSharding(mesh, P())

  method = methods.get(config)
  state, abstract_state = init_state(method, config, mesh)
  manager = checkpoint_manager(workdir, config)
  restored, start_step = restore(manager, abstract_state)
  if restored is not None:
    state = restored
  start_step = start_step or 0

  train_step = jax.jit(_with_finiteness(method.train_step),
                       in_shardings=(replicated, data_sharding, replicated),
                       out_shardings=(replicated, replicated), donate_argnums=0)
  predict = jax.jit(method.predict)
  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  batches = pipeline.train_iterator(config, start_step)
  eval_examples = pipeline.eval_examples(config)
  dataset = {**pipeline.dataset_version(config), "split": config.data.eval_split,
             "num_images": len(eval_examples)}
  logger = RunLogger(workdir, config)

  def to_global(batch):
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(data_sharding, np.asarray(x)), batch)

  results = None
  pending = []  # device scalars of steps not yet checked for NaN / logged
  last_log_time, last_log_step = time.perf_counter(), start_step
  bar = tqdm(total=config.num_train_steps, initial=start_step, disable=jax.process_index() != 0,
             desc=config.method, dynamic_ncols=True)
  try:
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = to_global(next(batches))
      state, step_metrics = train_step(state, batch, jax.random.fold_in(step_rng, step))
      pending.append(step_metrics)
      bar.update(1)
      is_last = step == config.num_train_steps
      do_ckpt = step % config.checkpoint_every_steps == 0 or is_last
      do_eval = step % config.eval_every_steps == 0 or is_last
      if step % config.log_every_steps == 0 or do_ckpt or do_eval:
        records = jax.device_get(pending)
        pending = []
        _check_finite(step, records)  # before any save: a NaN state never reaches a checkpoint
        now = time.perf_counter()
        summary = _mean(records)
        summary.pop("state_is_finite")
        summary["images_per_second"] = (step - last_log_step) * config.batch_size / (now - last_log_time)
        last_log_time, last_log_step = now, step
        logger.scalars(step, {f"train/{k}": v for k, v in summary.items()})
        bar.set_postfix({k: f"{v:.4g}" for k, v in summary.items() if k != "learning_rate"}, refresh=False)
      if do_ckpt:
        manager.save(step, args=ocp.args.StandardSave(state))
      if do_eval:
        means, per_image, grids = evaluation.evaluate(method, state, eval_examples, config, predict=predict)
        logger.scalars(step, {f"eval/{system}/{m}": v for system, ms in means.items() for m, v in ms.items()})
        logger.images(step, grids)
        results = evaluation.write_results(workdir, config=config, step=step, means=means,
                                           per_image=per_image, dataset=dataset, num_devices=mesh.size)
        last_log_time = time.perf_counter()  # evaluation time is not training throughput
  finally:
    bar.close()
    manager.wait_until_finished()
    manager.close()
    logger.close()
  return results


def evaluate_checkpoint(config, workdir, *, step=None, devices=None) -> dict | None:
  """Evaluates a saved checkpoint (the latest, or `step`) and rewrites results.json."""
  mesh = make_mesh(devices)
  method = methods.get(config)
  _, abstract_state = init_state(method, config, mesh)
  manager = checkpoint_manager(workdir, config)
  state, step = restore(manager, abstract_state, step)
  manager.close()
  if state is None:
    raise FileNotFoundError(f"no checkpoint in {epath.Path(workdir) / 'checkpoints'}; train first")
  examples = pipeline.eval_examples(config)
  means, per_image, _ = evaluation.evaluate(method, state, examples, config)
  dataset = {**pipeline.dataset_version(config), "split": config.data.eval_split, "num_images": len(examples)}
  return evaluation.write_results(workdir, config=config, step=step, means=means, per_image=per_image,
                                  dataset=dataset, num_devices=mesh.size)


def summarize(config) -> list[dict]:
  """Parameter count and FLOPs per image of each network, at the config's training crop size."""
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(config.seed))
  rows = []
  for name, (params, apply, shape) in method.networks(state).items():
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    compiled = jax.jit(apply).lower(jax.ShapeDtypeStruct(shape, np.float32)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    rows.append({"network": name, "parameters": count, "input": "x".join(map(str, shape[1:])),
                 "gflops_per_image": float(cost.get("flops", float("nan"))) / shape[0] / 1e9})
  return rows

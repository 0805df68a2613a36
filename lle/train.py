"""The one trainer: builds any method's state, runs its jitted step data-parallel over every device of
every host, evaluates, checkpoints with Orbax, resumes, and logs. It knows nothing paper-specific.
"""
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from lle import cli, config_lib
from lle import evaluate as evaluation
from lle import methods, preemption
from lle.data import pipeline
from lle.logger import RunLogger


class NonFiniteLossError(FloatingPointError):
  pass


class Progress:
  """Training progress on stdout: a tqdm bar on a terminal; when stdout is a file (SLURM, nohup) one plain
  line per log step instead, so that a long run's log stays small and readable. Silent when not active
  (processes other than 0)."""

  def __init__(self, total: int, initial: int, *, desc: str, active: bool = True, stream=None):
    self.stream = sys.stdout if stream is None else stream
    self.active, self.total = active, total
    self.bar = None
    if active and self.stream.isatty():
      self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, file=self.stream)

  def update(self, n: int = 1):
    if self.bar is not None:
      self.bar.update(n)

  def log(self, step: int, values: dict, *, keep: bool = False):
    """One log step's training values: the bar's postfix, or one line `step S/T  name value ...`.
    `keep`: the line also on a terminal (the first step of a start: a multi-term loss's terms at
    initialisation, which the bar's postfix would overwrite)."""
    line = f"step {step}/{self.total}  " + "  ".join(f"{k} {v:.4g}" for k, v in values.items())
    if self.bar is not None:
      self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k != "learning_rate"}, refresh=False)
      if keep:
        self.bar.write(line, file=self.stream)
    elif self.active:
      print(line, file=self.stream, flush=True)

  def write(self, line: str):
    """A line of its own (an evaluation's scores), above the bar on a terminal."""
    if self.bar is not None:
      self.bar.write(line, file=self.stream)
    elif self.active:
      print(line, file=self.stream, flush=True)

  def close(self):
    if self.bar is not None:
      self.bar.close()


# Compiled programs are kept here across runs, so the second run of a sweep (same shapes, same code)
# loads its train step instead of compiling it again.
DEFAULT_COMPILATION_CACHE = "~/.cache/lle/jax_compilation_cache"


def setup_compilation_cache() -> str | None:
  """Turns on JAX's persistent compilation cache; returns its folder (None when off).

  $LLE_COMPILATION_CACHE names the folder (default DEFAULT_COMPILATION_CACHE) or is `off`; an explicit
  JAX_COMPILATION_CACHE_DIR (JAX's own switch) wins. On a cluster, point it at a shared file system so
  every node of every sweep run reuses one cache."""
  explicit = os.environ.get("JAX_COMPILATION_CACHE_DIR")
  if explicit:
    return explicit  # JAX reads it (and its JAX_PERSISTENT_CACHE_* companions) itself
  where = os.environ.get("LLE_COMPILATION_CACHE", DEFAULT_COMPILATION_CACHE)
  if where.strip().lower() in ("", "off", "0", "false", "none"):
    return None
  where = os.path.abspath(os.path.expanduser(where))
  jax.config.update("jax_compilation_cache_dir", where)
  # Every train/eval step takes seconds to compile; caching ones under 1 s (JAX's default floor) too
  # costs little disk and helps tiny configs.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return where


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over every device of every host (or `devices`), with one `data` axis."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def data_parallel_devices(batch_size: int, devices=None) -> list:
  """The devices a global batch is split over: all of them when it divides evenly, else the largest
  number that does, taking the same number on every host (a paper's batch of 6 on 8 GPUs runs on 6 of
  them, one image each, and says so: the batch, hence the training, stays the paper's)."""
  devices = list(devices if devices is not None else jax.devices())
  hosts = sorted({d.process_index for d in devices})
  if batch_size % len(hosts):
    raise ValueError(f"config.batch_size={batch_size} must divide by the {len(hosts)} processes; "
                     f"process counts that work: {[n for n in range(1, batch_size + 1) if batch_size % n == 0]}")
  local = min(sum(d.process_index == h for d in devices) for h in hosts)
  per_host = max(k for k in range(1, local + 1) if batch_size % (k * len(hosts)) == 0)
  taken = {h: 0 for h in hosts}
  chosen = []
  for d in devices:  # keeps the given order, the first `per_host` devices of each host
    if taken[d.process_index] < per_host:
      taken[d.process_index] += 1
      chosen.append(d)
  return chosen


def checkpoint_manager(workdir, config, *, read_only=False) -> ocp.CheckpointManager:
  """The run's Orbax checkpoints; `read_only` (eval, enhance) creates, renames and deletes nothing."""
  directory = epath.Path(workdir).absolute() / "checkpoints"
  if read_only:
    options = ocp.CheckpointManagerOptions(read_only=True, create=False, max_to_keep=None, save_interval_steps=0)
  else:
    options = ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True)
  with cli.quiet_library_logs():
    return ocp.CheckpointManager(directory, options=options, item_handlers=ocp.StandardCheckpointHandler())


def init_state(method, config, mesh):
  """Replicated initial state, and its abstract form (shapes + shardings) for Orbax restores."""
  replicated = NamedSharding(mesh, P())
  rng = jax.random.fold_in(jax.random.key(config.seed), 0)
  init = jax.jit(method.init, out_shardings=replicated)
  abstract = jax.eval_shape(method.init, rng)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), abstract)
  return init(rng), abstract


class UnreadableCheckpointsError(OSError):
  """Every checkpoint of a run failed to read."""


class ConfigMismatchError(cli.UsageError):
  """A config whose networks do not fit a run's checkpoints, or that differs from the run's own."""


def _check_shapes(manager, step, abstract_state):
  """`ConfigMismatchError` naming the first array whose stored shape differs from what the config builds
  (a model of another size is a config mismatch, not an unreadable checkpoint). Checkpoints whose
  metadata cannot be read are left to `manager.restore` to fail."""
  try:
    with cli.quiet_library_logs():
      stored = ocp.tree.to_flat_dict(manager.item_metadata(step), sep="/")
  except Exception:  # a damaged checkpoint: its restore reports it
    return
  wanted = ocp.tree.to_flat_dict(abstract_state, sep="/")
  for name in sorted(set(stored) | set(wanted), key=lambda n: ("/params/" not in n, n)):  # parameters first
    have = tuple(stored[name].shape) if name in stored else "absent"
    want = tuple(wanted[name].shape) if name in wanted else "absent"
    if have != want:
      raise ConfigMismatchError(
          f"the config does not fit checkpoint {manager.directory / str(step)}: {name} is {have} there, "
          f"{want} in this config; the checkpoint was made with another config (eval and enhance use the "
          "run's config.json when --config is left out)")


def restore(manager, abstract_state, step=None, *, set_aside=True):
  """The checkpoint of `step`, else the latest readable one: an unreadable checkpoint (truncated files, a
  step folder that lost files) is skipped with a warning naming it. With `set_aside` (training, which
  saves over those steps again) it is renamed `<step>.unreadable` once an older one has restored, which
  shows that the fault is the file's and not the config's; read-only commands only skip it. A config
  whose arrays differ in shape from the checkpoint's is a `ConfigMismatchError`, not an unreadable file."""
  if step is not None:
    if step not in manager.all_steps():
      raise FileNotFoundError(f"no checkpoint for step {step} in {manager.directory}; "
                              f"saved steps: {sorted(manager.all_steps())}")
    _check_shapes(manager, step, abstract_state)
    with cli.quiet_library_logs():
      return manager.restore(step, args=ocp.args.StandardRestore(abstract_state)), step
  unreadable = []
  for candidate in sorted(manager.all_steps(), reverse=True):
    _check_shapes(manager, candidate, abstract_state)
    try:
      with cli.quiet_library_logs():
        state = manager.restore(candidate, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # Orbax/TensorStore raise many types for a damaged file
      reason = (str(e).strip().splitlines() or [""])[0][:200]
      print(f"warning: checkpoint {manager.directory / str(candidate)} is unreadable "
            f"({type(e).__name__}: {reason}); trying the one before", flush=True)
      unreadable.append((candidate, e))
      continue
    if set_aside:
      _set_aside(manager, [s for s, _ in unreadable])
    return state, candidate
  if unreadable:
    step, error = unreadable[0]
    reason = (str(error).strip().splitlines() or [""])[0][:300]
    raise UnreadableCheckpointsError(f"no checkpoint in {manager.directory} can be restored (tried steps "
                                     f"{[s for s, _ in unreadable]}); the newest failed with: {reason}") from error
  return None, None


def _set_aside(manager, steps):
  if steps and jax.process_index() == 0:
    for step in steps:
      folder = epath.Path(manager.directory) / str(step)
      target, n = folder.with_name(f"{step}.unreadable"), 1
      while target.exists():  # set aside before: this step was saved again and is unreadable again
        target, n = folder.with_name(f"{step}.unreadable.{n}"), n + 1
      folder.rename(target)
  if steps:
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("lle_set_aside_unreadable_checkpoints")
    manager.reload()


def _with_finiteness(train_step):
  """Adds `state_is_finite` to a step's metrics: a loss is computed from the state *before* the update,
  so only this tells whether the state about to be checkpointed is finite."""

  def checked_train_step(state, batch, rng):
    state, metrics = train_step(state, batch, rng)
    finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return state, {**metrics, "state_is_finite": jnp.all(jnp.stack(finite)).astype(jnp.float32)}

  return checked_train_step


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


# Fields that do not change what is trained: how long to go on, how often to evaluate, save and log,
# where the data lives and how it is read, what is evaluated and where it is logged. A resumed run may
# change these; any other change would mix two trainings in one run.
RUN_ONLY_FIELDS = ("num_train_steps", "eval_every_steps", "checkpoint_every_steps", "log_every_steps",
                   "keep_checkpoints", "data.data_dir", "data.eval_split", "data.eval_limit",
                   "data.worker_count", "data.read_threads", "data.prefetch", "data.cache_mb", "eval", "wandb")


def _as_json(config) -> dict:
  return json.loads(json.dumps(config.to_dict(), default=str))


def _flatten(tree, prefix=""):
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def training_changes(previous: dict, current: dict) -> list[str]:
  """'key: old -> new' for every field outside RUN_ONLY_FIELDS that differs between two config dicts."""
  old, new = _flatten(previous), _flatten(current)
  changes = []
  for key in sorted(set(old) | set(new)):
    if any(key == f or key.startswith(f + ".") for f in RUN_ONLY_FIELDS):
      continue
    if old.get(key, "<absent>") != new.get(key, "<absent>"):
      changes.append(f"{key}: {old.get(key, '<absent>')} -> {new.get(key, '<absent>')}")
  return changes


def _write_json(path, value):
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(value, indent=2, default=str))
  tmp.replace(path)  # atomic: readers never see half a file


def write_config(workdir, config, *, start_step=0, changes=()):
  """`config.json` is the config of the latest start; `starts/NNN.json` keeps every start's config."""
  if jax.process_index() != 0:
    return
  workdir = epath.Path(workdir)
  _write_json(workdir / "config.json", config.to_dict())
  starts = workdir / "starts"
  starts.mkdir(exist_ok=True)
  index = len(list(starts.glob("[0-9]*.json")))
  _write_json(starts / f"{index:03d}.json", {"start_step": start_step, "time": time.time(),
                                             "training_changes": list(changes), "config": config.to_dict()})


class ConfigChangedError(cli.UsageError):
  pass


class EvaluationOnlyError(ValueError):
  """A config whose data cannot train (`config.evaluation_only` says why and what to do instead)."""


def train_and_evaluate(config, workdir, *, devices=None, allow_config_change=False,
                       preemption_signals=preemption.DEFAULT_SIGNALS) -> dict | None:
  """Trains `config.method` to `config.num_train_steps`, resuming from the workdir's latest readable
  checkpoint (with the same training config, unless `allow_config_change`).

  Returns the final results (as written to results.json) on process 0. On one of `preemption_signals`
  it finishes the step, saves a checkpoint, flushes the logs and raises `preemption.Preempted`.
  """
  if config.get("evaluation_only"):
    raise EvaluationOnlyError(f"this {config.method} config is for evaluation only: {config.evaluation_only}")
  config_lib.check(config, training=True)  # before anything is written
  cli.check_output_folder(workdir, "--workdir")
  pipeline.check_built(config.data)
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  available = list(devices if devices is not None else jax.devices())
  mesh = make_mesh(data_parallel_devices(config.batch_size, available))
  if mesh.size < len(available) and jax.process_index() == 0:
    print(f"batch_size={config.batch_size} does not divide over {len(available)} devices: training on "
          f"{mesh.size} of them ({config.batch_size // mesh.size} per device), {len(available) - mesh.size} idle",
          flush=True)
  data_sharding = NamedSharding(mesh, P("data"))
  replicated = NamedSharding(mesh, P())

  method = methods.get(config)
  state, abstract_state = init_state(method, config, mesh)
  manager = checkpoint_manager(workdir, config)
  changes = []
  previous_config = workdir / "config.json"
  if manager.all_steps() and previous_config.exists():
    changes = training_changes(json.loads(previous_config.read_text()), _as_json(config))
    if changes and not allow_config_change:
      manager.close()
      raise ConfigChangedError(
          f"{workdir} holds checkpoints of a run whose config differs in fields that change training: "
          f"{'; '.join(changes)}. Use a new --workdir, or pass --allow_config_change to resume anyway.")
  restored, start_step = restore(manager, abstract_state)
  if restored is not None:
    state = restored
    if jax.process_index() == 0:
      print(f"resumed from step {start_step}", flush=True)
  start_step = start_step or 0
  write_config(workdir, config, start_step=start_step, changes=changes)

  train_step = jax.jit(_with_finiteness(method.train_step),
                       in_shardings=(replicated, data_sharding, replicated),
                       out_shardings=(replicated, replicated), donate_argnums=0)
  evaluator = evaluation.Evaluator(method, config, mesh=mesh)
  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  batches = pipeline.train_iterator(config, start_step)
  eval_set = pipeline.eval_set(config)
  dataset = {**pipeline.dataset_version(config), "split": config.data.eval_split,
             "num_images": len(eval_set)}
  logger = RunLogger(workdir, config, start_step=start_step)

  def to_global(batch):
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(data_sharding, np.asarray(x)), batch)

  first_batch, compile_record = None, {}
  if start_step < config.num_train_steps:  # compiled ahead of the loop, so that its time is reported
    first_batch = to_global(next(batches))
    compile_start = time.perf_counter()
    train_step = train_step.lower(state, first_batch, jax.random.fold_in(step_rng, start_step + 1)).compile()
    compile_record["compile_seconds"] = time.perf_counter() - compile_start
    if jax.process_index() == 0:
      print(f"train step compiled in {compile_record['compile_seconds']:.1f} s (persistent compilation cache: "
            f"{jax.config.jax_compilation_cache_dir or 'off'})", flush=True)

  results = None
  pending = []  # device scalars of steps not yet checked for NaN / logged
  last_log_time, last_log_step = time.perf_counter(), start_step
  bar = Progress(config.num_train_steps, start_step, desc=config.method, active=jax.process_index() == 0)
  watcher = preemption.Watcher(preemption_signals).__enter__()  # left in the `finally` below
  try:
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = first_batch if step == start_step + 1 else to_global(next(batches))
      state, step_metrics = train_step(state, batch, jax.random.fold_in(step_rng, step))
      pending.append(step_metrics)
      bar.update(1)
      is_last = step == config.num_train_steps
      preempted = watcher.should_stop(step) and not is_last
      do_ckpt = step % config.checkpoint_every_steps == 0 or is_last or preempted
      do_eval = (step % config.eval_every_steps == 0 or is_last) and not preempted
      # The first step of every start is logged alone: a multi-term loss's terms at initialisation are
      # what its weights are judged against (a window's mean would blur them with later steps).
      first = step == start_step + 1
      if step % config.log_every_steps == 0 or do_ckpt or do_eval or first:
        records = jax.device_get(pending)
        pending = []
        _check_finite(step, records)  # before any save: a NaN state never reaches a checkpoint
        now = time.perf_counter()
        summary = _mean(records)
        summary.pop("state_is_finite")
        summary["images_per_second"] = (step - last_log_step) * config.batch_size / (now - last_log_time)
        summary.update(compile_record)  # the first record of a start holds its compile time
        compile_record = {}
        last_log_time, last_log_step = now, step
        logger.scalars(step, {f"train/{k}": v for k, v in summary.items()})
        bar.log(step, summary, keep=first)
      if do_ckpt:
        manager.save(step, args=ocp.args.StandardSave(state))
      if do_eval:
        means, per_image, grids = evaluator(state, eval_set)
        no_reference = evaluator.no_reference(state)
        logger.scalars(step, {f"eval/{system}/{m}": v for system, ms in means.items() for m, v in ms.items()})
        logger.images(step, grids)
        bar.write(f"step {step} eval: model " + "  ".join(f"{k} {v:.4g}" for k, v in means["model"].items()))
        results = evaluation.write_results(workdir, config=config, step=step, means=means,
                                           per_image=per_image, dataset=dataset, num_devices=mesh.size,
                                           num_devices_available=len(available), no_reference=no_reference)
        last_log_time = time.perf_counter()  # evaluation time is not training throughput
      if preempted:
        logger.mark_preempting()
        raise preemption.Preempted(step, watcher.received)
  finally:
    watcher.__exit__()
    bar.close()
    manager.wait_until_finished()
    manager.close()
    logger.close()
  return results


# Besides the run-only fields, an evaluation may score other data than the run trained on, and read it
# otherwise; these data fields stay the run's: they define the model's own input and output.
MODEL_DATA_FIELDS = ("data.target_encoding", "data.input_scale")


def model_changes(previous: dict, current: dict) -> list[str]:
  """`training_changes` less the data fields that an evaluation may change (not MODEL_DATA_FIELDS)."""
  return [c for c in training_changes(previous, current)
          if not c.startswith("data.") or c.split(":")[0] in MODEL_DATA_FIELDS]


def run_config(workdir, config=None):
  """The config of the trained run in `workdir`, for commands that use it (eval, enhance): its own
  config.json, or `config` where the folder has none (then `config` is needed). A `config` given beside a
  config.json is used only if it agrees with it in every field that changes the model; otherwise a
  `ConfigMismatchError` names each field (`field: run's -> given`)."""
  workdir = epath.Path(workdir)
  if not workdir.is_dir():
    hint = (f": train one first, e.g. `./launch.sh train --config=configs/{config.method}.py:demo "
            f"--workdir={workdir}`" if config is not None else "")
    raise FileNotFoundError(f"no run in {workdir} (no such folder){hint}")
  saved_file = workdir / "config.json"
  if not saved_file.exists():
    if config is None:
      raise cli.UsageError(f"{workdir} has no config.json: name the config its checkpoints were made with, "
                           "--config=configs/<method>.py[:variant]")
    return config
  saved = json.loads(saved_file.read_text())
  if config is None:
    return config_lib.from_json(saved)
  if saved.get("method") != config.method:
    raise ConfigMismatchError(f"{workdir} holds a {saved.get('method')!r} run, but --config is for "
                              f"{config.method!r}")
  changes = model_changes(saved, _as_json(config))
  if changes:
    raise ConfigMismatchError(
        f"--config differs from the config {saved_file} was trained with, in fields that change the model: "
        f"{'; '.join(changes)}. Leave out --config to use the run's own config.")
  return config


def load_checkpoint(config, workdir, step=None, *, mesh=None):
  """(config, method, state, step) of a trained run, read only: the run's own config (see `run_config`),
  and the checkpoint of `step` or the latest readable one, replicated over `mesh`."""
  config = run_config(workdir, config)
  config_lib.check(config, training=False)
  directory = epath.Path(workdir).absolute() / "checkpoints"
  no_checkpoint = FileNotFoundError(f"no checkpoint in {directory}: train one first, e.g. `./launch.sh train "
                                    f"--config=configs/{config.method}.py:demo --workdir={workdir}`")
  if not directory.is_dir():
    raise no_checkpoint
  mesh = mesh or make_mesh()
  method = methods.get(config)
  _, abstract = init_state(method, config, mesh)
  manager = checkpoint_manager(workdir, config, read_only=True)
  try:
    state, step = restore(manager, abstract, step, set_aside=False)
  finally:
    manager.close()
  if state is None:
    raise no_checkpoint
  return config, method, state, step


def evaluate_checkpoint(config, workdir, *, step=None, devices=None, results_dir=None) -> dict | None:
  """Evaluates a saved checkpoint (the latest, or `step`) of the run in `workdir` with the run's own
  config (`config` where it has none; see `run_config`) and rewrites results.json (in `results_dir`, or
  the run folder: another folder keeps the run's own results when it is scored on other data)."""
  mesh = make_mesh(devices)
  config, method, state, step = load_checkpoint(config, workdir, step, mesh=mesh)
  eval_set = pipeline.eval_set(config)
  evaluator = evaluation.Evaluator(method, config, mesh=mesh)
  means, per_image, grids = evaluator(state, eval_set)
  no_reference = evaluator.no_reference(state)
  if jax.process_index() == 0:
    from lle import logger
    logger.write_grids(results_dir or workdir, step, grids)  # beside the results they illustrate
  dataset = {**pipeline.dataset_version(config), "split": config.data.eval_split, "num_images": len(eval_set)}
  return evaluation.write_results(workdir, config=config, step=step, means=means, per_image=per_image,
                                  dataset=dataset, num_devices=mesh.size, no_reference=no_reference,
                                  results_dir=results_dir)


def summarize(config) -> list[dict]:
  """Parameter count and FLOPs per image of each network, at the config's training crop size (the
  pretrained feature networks of losses are not counted, and their weights not read)."""
  method = methods.get(methods.without_feature_losses(config))
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

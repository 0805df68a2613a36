"""Runs a W&B sweep file locally, without a W&B server.

  python -m lle.sweep sweeps/itmn_alpha_lambda.yaml --workdir=runs/table2 [--config=configs/itmn.py:demo]
      [--config.num_train_steps=200 ...] [--parallel=N] [--count=N] [--shard=I --num_shards=K] [--dry_run]

The sweep file is the one `wandb sweep` takes: `method` grid or random, `parameters` named by config
path (`config.loss.alpha`) with `value`, `values` or a distribution, and a `command` that ends in
`${args}`. Each run gets the W&B agent's argument list (`--config.loss.alpha=1e3 ...`), then the
overrides given here (which replace a swept parameter of the same name), and its own workdir
`WORKDIR/<run name>`. A run's outcome goes to `WORKDIR/<run>/sweep_status.json`; a failed run is
recorded and the sweep goes on; a rerun skips runs that finished and resumes the others. `--parallel=N`
runs N at a time, each pinned to one accelerator (CUDA_VISIBLE_DEVICES) when there are any.
`--shard=I --num_shards=K` runs only runs I, I+K, I+2K, ... (one SLURM array task each). A run stopped by
a preemption signal is recorded as preempted; the runner then starts no new run and exits with 75, like
`lle.main`, so that the array task is requeued and the rerun resumes it.
"""
import concurrent.futures
import hashlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import yaml
from absl import app, flags

from lle import config_lib

PREEMPTED_EXIT_CODE = 75  # lle.preemption.EXIT_CODE (not imported: this runner does not need JAX)
DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform", "q_uniform", "categorical")


def load_sweep(path: str) -> dict:
  with open(path) as f:
    sweep = yaml.safe_load(f)
  if not isinstance(sweep, dict) or "parameters" not in sweep:
    raise ValueError(f"{path}: a sweep file needs a `parameters` mapping")
  if sweep.get("method", "grid") not in ("grid", "random"):
    raise ValueError(f"{path}: method {sweep.get('method')!r} is not supported locally; use grid or random")
  return sweep


def _sample(spec: dict, rng: np.random.Generator):
  if "value" in spec:
    return spec["value"]
  if "values" in spec:
    return spec["values"][rng.integers(len(spec["values"]))]
  kind = spec.get("distribution", "uniform")
  lo, hi = spec["min"], spec["max"]
  if kind == "uniform":
    return float(rng.uniform(lo, hi))
  if kind == "log_uniform_values":
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
  if kind == "int_uniform":
    return int(rng.integers(lo, hi + 1))
  if kind == "q_uniform":
    q = spec.get("q", 1)
    return float(round(rng.uniform(lo, hi) / q) * q)
  raise ValueError(f"distribution {kind!r} is not supported; expected one of {DISTRIBUTIONS}")


def expand(sweep: dict, *, count: int | None = None, seed: int = 0) -> list[dict]:
  """The runs of a sweep, each {parameter: value}: the cartesian product of `value`/`values` for grid
  (in file order, last parameter fastest), `count` (or `run_cap`) random draws for random."""
  params = sweep["parameters"]
  if sweep.get("method", "grid") == "grid":
    for name, spec in params.items():
      if "value" not in spec and "values" not in spec:
        raise ValueError(f"grid sweep parameter {name!r} needs `value` or `values`, not a distribution")
    choices = [[spec["value"]] if "value" in spec else list(spec["values"]) for spec in params.values()]
    runs = [dict(zip(params, combo)) for combo in itertools.product(*choices)]
    return runs[:count] if count else runs
  count = count or sweep.get("run_cap")
  if not count:
    raise ValueError("a random sweep needs --count or `run_cap`")
  rng = np.random.default_rng(seed)
  return [{name: _sample(spec, rng) for name, spec in params.items()} for _ in range(count)]


def agent_args(run: dict) -> list[str]:
  """The argument list the W&B agent's `${args}` gives a run: `--name=value`, values as W&B prints them."""
  return [f"--{name}={value}" for name, value in run.items()]


def _merge_config(swept: str, override: str) -> str:
  """`--config=configs/x.py:demo` over a swept `configs/x.py:nodmse` gives `configs/x.py:demo,nodmse`:
  a local size variant combines with the variants a sweep compares."""
  o_path, _, o_var = override.partition(":")
  if str(swept).partition(":")[0] != o_path:
    return override
  return config_lib.with_variants(str(swept), o_var)


def with_overrides(run: dict, overrides: list[str]) -> list[str]:
  """Agent arguments with `overrides` (`--key=value`) replacing a swept parameter of the same key
  (for `--config=FILE:VARIANT`, merged with the swept config's variants)."""
  run = dict(run)
  extra = []
  for o in overrides:
    key, _, value = o[2:].partition("=")
    if key == "config" and "config" in run:
      run["config"] = _merge_config(run["config"], value)
    else:
      run.pop(key, None)
      extra.append(o)
  return agent_args(run) + extra


def run_name(args: list[str]) -> str:
  """A readable, unique folder name: the swept values, plus a short hash of the whole argument list."""
  parts = [a[2:].split("=", 1) for a in args]
  readable = ",".join(f"{k.rsplit('.', 1)[-1]}={v.rsplit('/', 1)[-1]}" for k, v in parts)[:120]
  digest = hashlib.sha1("\0".join(args).encode()).hexdigest()[:8]
  return f"{readable}-{digest}".replace(" ", "")


def _status(workdir: str) -> dict | None:
  path = os.path.join(workdir, "sweep_status.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_status(workdir: str, status: dict):
  path = os.path.join(workdir, "sweep_status.json")
  with open(path + ".tmp", "w") as f:
    json.dump(status, f, indent=2)
  os.replace(path + ".tmp", path)


def run_one(args: list[str], workdir: str, *, program: list[str], device: str | None = None) -> dict:
  """Runs `program + args --workdir=...`; output goes to WORKDIR/log.txt. Never raises for a failed run."""
  os.makedirs(workdir, exist_ok=True)
  env = dict(os.environ)
  if device is not None:
    env["CUDA_VISIBLE_DEVICES"] = device
  start = time.time()
  with open(os.path.join(workdir, "log.txt"), "w") as log:
    code = subprocess.run(program + args + [f"--workdir={workdir}"], stdout=log, stderr=subprocess.STDOUT,
                          env=env).returncode
  state = {0: "finished", PREEMPTED_EXIT_CODE: "preempted"}.get(code, "failed")
  status = {"state": state, "returncode": code, "args": args,
            "seconds": round(time.time() - start, 1)}
  _write_status(workdir, status)
  return status


def shard_of(runs: list, shard: int, num_shards: int) -> list:
  if not 0 <= shard < num_shards:
    raise ValueError(f"--shard={shard} must be in [0, --num_shards={num_shards})")
  return runs[shard::num_shards]


def run_sweep(sweep: dict, sweep_dir: str, overrides: list[str], *, parallel: int = 1,
              count: int | None = None, seed: int = 0, program: list[str] | None = None,
              devices: list[str] | None = None, shard: int = 0, num_shards: int = 1,
              stop: threading.Event | None = None, log=print) -> dict[str, dict]:
  """Runs every run of `sweep` (of this shard) not yet finished under `sweep_dir`; returns {run name:
  status}. Once `stop` is set (a preemption signal), no further run starts."""
  program = program or [sys.executable, "-m", "lle.main"]
  stop = stop or threading.Event()
  os.makedirs(sweep_dir, exist_ok=True)
  todo, results = [], {}
  for run in shard_of(expand(sweep, count=count, seed=seed), shard, num_shards):
    args = with_overrides(run, overrides)
    name = run_name(args)
    if name in results or any(name == n for n, _ in todo):
      continue  # an override pinned a swept key: runs that became identical run once
    status = _status(os.path.join(sweep_dir, name))
    if status and status["state"] == "finished":
      results[name] = {**status, "skipped": True}
      log(f"skip   {name} (finished)")
    else:
      todo.append((name, args))
  if num_shards == 1:  # shards would race on one file; each run folder holds its own arguments
    with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
      json.dump({"sweep": sweep, "overrides": overrides, "runs": [n for n, _ in todo] + list(results)}, f,
                indent=2)
  devices = devices if devices is not None else _accelerators()
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
    futures = {}

    def start(i, name, args):
      if stop.is_set():
        return {"state": "not started", "returncode": None, "args": args, "seconds": 0.0}
      device = devices[i % len(devices)] if devices and parallel > 1 else None
      return run_one(args, os.path.join(sweep_dir, name), program=program, device=device)

    for i, (name, args) in enumerate(todo):
      futures[pool.submit(start, i, name, args)] = name
    for future in concurrent.futures.as_completed(futures):
      name = futures[future]
      results[name] = future.result()
      log(f"{results[name]['state']:<8} {name} ({results[name]['seconds']} s)")
  return results


def _accelerators() -> list[str]:
  visible = os.environ.get("CUDA_VISIBLE_DEVICES")
  if visible:
    return visible.split(",")
  try:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    return []
  return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Sweep folder: one run folder per run.", required=True)
flags.DEFINE_integer("parallel", 1, "Runs at a time (one per accelerator when there are any).")
flags.DEFINE_integer("count", None, "Runs of a random sweep (default: the file's run_cap); grid: the first N.")
flags.DEFINE_integer("sweep_seed", 0, "Seed of a random sweep's draws.")
flags.DEFINE_bool("dry_run", False, "Print each run's arguments and exit.")
flags.DEFINE_integer("shard", 0, "Run only runs shard, shard + num_shards, ... (e.g. $SLURM_ARRAY_TASK_ID).")
flags.DEFINE_integer("num_shards", 1, "Number of shards (e.g. $SLURM_ARRAY_TASK_COUNT).")


def main(argv):
  sweep_file, overrides = None, []
  for arg in argv[1:]:
    if arg.startswith("--config"):
      overrides.append(arg)
    elif sweep_file is None:
      sweep_file = arg
    else:
      raise app.UsageError(f"unexpected argument {arg!r}")
  if sweep_file is None:
    raise app.UsageError("usage: python -m lle.sweep SWEEP.yaml --workdir=DIR [--config...=...]")
  sweep = load_sweep(sweep_file)
  if FLAGS.dry_run:
    for run in shard_of(expand(sweep, count=FLAGS.count, seed=FLAGS.sweep_seed), FLAGS.shard, FLAGS.num_shards):
      print(" ".join(with_overrides(run, overrides)))
    return
  # A preemption signal reaches the running runs too (SLURM signals every process of the job step; a
  # terminal's Ctrl-C the process group): they checkpoint and exit 75, and this runner starts no more.
  stop = threading.Event()
  for name in ("SIGTERM", "SIGUSR1"):
    signal.signal(getattr(signal, name), lambda *_: stop.set())
  start = time.time()
  results = run_sweep(sweep, FLAGS.workdir, overrides, parallel=FLAGS.parallel, count=FLAGS.count,
                      seed=FLAGS.sweep_seed, shard=FLAGS.shard, num_shards=FLAGS.num_shards, stop=stop)
  failed = sorted(n for n, s in results.items() if s["state"] == "failed")
  unfinished = sorted(n for n, s in results.items() if s["state"] in ("preempted", "not started"))
  print(f"{len(results) - len(failed) - len(unfinished)} finished, {len(failed)} failed, "
        f"{len(unfinished)} preempted or not started in {time.time() - start:.0f} s"
        + (f"; failed: {', '.join(failed)} (see their log.txt)" if failed else ""))
  if unfinished:
    sys.exit(PREEMPTED_EXIT_CODE)  # a rerun resumes them
  sys.exit(1 if failed else 0)


def _split_argv(argv):
  """absl must not parse the `--config...` overrides: they are passed through to each run."""
  ours = [a for a in argv[1:] if not a.startswith("--config")]
  rest = [a for a in argv[1:] if a.startswith("--config")]
  remaining = FLAGS(argv[:1] + ours)
  return remaining + rest


if __name__ == "__main__":
  app.run(main, flags_parser=_split_argv)

"""Entry point: `python -m lle.main --config=configs/<method>.py[:variant] --workdir=DIR [--mode=...]`.

Modes: train (with periodic evaluation; resumes from the workdir), eval (a checkpoint: the latest or
--checkpoint_step; results.json into the workdir or --results_dir), summary (parameter count and FLOPs per image of each network; no workdir needed).
Overrides: `--config.loss.alpha=1e3`. Multi-host: pass --coordinator_address, --num_processes and
--process_id, or --distributed to let `jax.distributed.initialize` read them from the cluster (SLURM...).

Compiled steps are cached across runs in $LLE_COMPILATION_CACHE (default ~/.cache/lle/jax_compilation_cache;
`off` turns it off), so the runs of a sweep after the first skip most compilation.

A --config path that does not exist from the working directory is read from lle's repository
(`configs/...`); `--variants=demo` applies that variant before the config's own (a W&B sweep at demo size).
Under a W&B sweep agent (WANDB_SWEEP_ID and WANDB_RUN_ID set) --workdir defaults to
`$LLE_RUNS_DIR/<sweep id>/<run id>` (LLE_RUNS_DIR defaults to `runs`). A run stopped by a preemption
signal saves a checkpoint and exits with code 75 (EX_TEMPFAIL): requeue it with the same arguments.
"""
import difflib
import glob
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from lle import cli, config_lib, logger

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Method config file, e.g. configs/itmn.py:demo.",
                                lock_config=True)
flags.DEFINE_string("variants", None, "Config variants applied before --config's own, e.g. demo: a W&B sweep "
                    "at demo size (config_lib.resolve_config_args).")
flags.DEFINE_string("workdir", None, "Run folder: checkpoints, metrics.jsonl, results.json, config.json.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "summary"], "What to do.")
flags.DEFINE_integer("checkpoint_step", None, "eval mode: the checkpoint step (default: the latest).")
flags.DEFINE_string("results_dir", None, "eval mode: where results.json goes (default: the workdir). Another "
                    "folder keeps the run's own results when it is scored on another data set.")
flags.DEFINE_bool("allow_config_change", False,
                  "Resume a workdir even if the config differs in fields that change training.")
flags.DEFINE_list("preemption_signals", ["SIGTERM", "SIGUSR1"],
                  "Signals that stop training after the current step with a checkpoint, exit code 75.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() with cluster auto-detection.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-process runs.")
flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-process run.")
flags.DEFINE_integer("process_id", None, "This process's index in a multi-process run.")


def _flat_keys(config, prefix=""):
  keys = []
  for key, value in config.items():
    name = f"{prefix}{key}"
    keys.append(name)
    if hasattr(value, "items"):
      keys.extend(_flat_keys(value, name + "."))
  return keys


def _config_keys(argv) -> list[str]:
  """Keys of the config named by --config in argv (loaded independently of absl's flag parsing)."""
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  return [] if spec is None else _flat_keys(config_lib.load(spec))


def _check_overrides(argv):
  """Exits with a one-line error naming any `--config.KEY` override whose KEY the config lacks."""
  overrides = [a[2:].split("=", 1)[0] for a in argv if a.startswith("--config.")]
  if not overrides:
    return
  keys = _config_keys(argv)
  for override in overrides:
    key = override[len("config."):]
    if key in keys:
      continue
    parent = key.rpartition(".")[0]
    siblings = [k for k in keys if parent and k.startswith(parent + ".")]
    near = difflib.get_close_matches(key, keys, n=4, cutoff=0.6) or siblings[:6] or keys[:6]
    print(f"error: config has no key {key!r}; nearest valid keys: {', '.join(near)}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv):
  """absl flag parsing, with one-line errors for bad flags and unknown config keys."""
  try:
    argv = config_lib.resolve_config_args(argv)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  _check_overrides(argv)
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


@cli.reports_errors
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.config is None and FLAGS.mode != "eval":  # eval reads the run's own config.json
    raise app.UsageError("--config is required, e.g. --config=configs/itmn.py:demo")
  if not any(a.startswith(("--verbosity", "-v")) for a in sys.argv):
    logging.set_verbosity(logging.WARNING)  # keeps Orbax's per-save INFO lines out of the progress bar
  import jax
  if FLAGS.coordinator_address or FLAGS.distributed:
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  from lle import train
  train.setup_compilation_cache()
  config = FLAGS.config
  if jax.process_index() == 0:
    if not FLAGS.workdir and logger.sweep_agent_workdir() and FLAGS.mode != "summary":
      print(f"W&B sweep agent run: workdir {logger.sweep_agent_workdir()}")
    print(f"{jax.device_count()} devices ({jax.devices()[0].platform}), {jax.process_count()} process(es)")
  if FLAGS.mode == "summary":
    rows = train.summarize(config)
    print(f"{'network':<10} {'parameters':>12} {'input':>12} {'GFLOPs/image':>14}")
    for r in rows:
      print(f"{r['network']:<10} {r['parameters']:>12,} {r['input']:>12} {r['gflops_per_image']:>14.3f}")
    return
  workdir = FLAGS.workdir or logger.sweep_agent_workdir()
  if not workdir:
    raise app.UsageError("--workdir is required for train and eval (outside a W&B sweep agent)")
  if FLAGS.mode == "train":
    from lle import preemption
    try:
      results = train.train_and_evaluate(config, workdir, allow_config_change=FLAGS.allow_config_change,
                                         preemption_signals=FLAGS.preemption_signals)
    except preemption.Preempted as e:
      print(f"{e}; resume with the same arguments (exit code {preemption.EXIT_CODE})", flush=True)
      sys.exit(preemption.EXIT_CODE)
    except (train.ConfigChangedError, train.EvaluationOnlyError) as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  else:
    results = train.evaluate_checkpoint(config, workdir, step=FLAGS.checkpoint_step, results_dir=FLAGS.results_dir)
  if results is not None:
    from lle import evaluate
    print(evaluate.results_table(results))
    for path in sorted(glob.glob(str(logger.grid_path(workdir, results["step"], "*")))):
      print(f"input | each baseline | model | target: {path}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)

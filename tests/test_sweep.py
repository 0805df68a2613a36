import json
import os
import subprocess
import sys

import ml_collections
import pytest

from lle import sweep
from tests.conftest import REPO

SWEEPS = os.path.join(REPO, "sweeps")


def _parse(args):
  """Parses an agent argument list with `python -m lle.main`'s own flag parser, in a fresh process."""
  code = ("import sys; from lle import main; main.parse_flags(['lle'] + sys.argv[1:]); "
          "print(main.FLAGS.config.to_json())")
  out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  return ml_collections.ConfigDict(json.loads(out.stdout))


def test_agent_arguments_are_config_overrides_with_types():
  run = sweep.expand(sweep.load_sweep(os.path.join(SWEEPS, "itmn_alpha_lambda.yaml")))[13]
  args = sweep.agent_args(run)
  config = _parse(args)
  assert isinstance(config.loss.alpha, float) and isinstance(config.loss.lam, float)
  assert (config.loss.alpha, config.loss.lam, config.seed) == (run["config.loss.alpha"], run["config.loss.lam"],
                                                               run["config.seed"])
  # A value written as W&B prints a YAML "1e5" (a string to YAML 1.1) still becomes the float 1e5.
  config = _parse(["--config=configs/itmn.py", "--config.loss.alpha=1e5", "--config.seed=3"])
  assert config.loss.alpha == 1e5 and isinstance(config.loss.alpha, float) and config.seed == 3


def test_grid_and_random_expansion():
  grid = sweep.expand(sweep.load_sweep(os.path.join(SWEEPS, "itmn_alpha_lambda.yaml")))
  assert len(grid) == 27
  pairs = {(r["config.loss.alpha"], r["config.loss.lam"]) for r in grid}
  assert {(1e3, 1e4), (1e5, 1e4), (1e7, 1e4), (1e5, 1e2), (1e5, 1e6)} <= pairs  # the paper's five
  random_sweep = sweep.load_sweep(os.path.join(SWEEPS, "itmn_lr_schedule.yaml"))
  draws = sweep.expand(random_sweep, count=20, seed=1)
  assert len(draws) == 20 and draws == sweep.expand(random_sweep, count=20, seed=1)
  assert all(5000 <= d["config.optimizer.decay_every"] <= 40000 for d in draws)
  assert all(0.1 <= d["config.optimizer.decay_factor"] <= 0.9 for d in draws)
  assert {d["config.optimizer.learning_rate"] for d in draws} <= {1e-3, 1e-4, 1e-6}
  assert len({d["config.optimizer.decay_every"] for d in draws}) > 10


def test_overrides_replace_swept_values_and_merge_variants():
  run = {"config": "configs/itmn.py:nodmse", "config.seed": 1}
  args = sweep.with_overrides(run, ["--config=configs/itmn.py:demo", "--config.seed=0", "--config.batch_size=4"])
  assert args == ["--config=configs/itmn.py:demo,nodmse", "--config.seed=0", "--config.batch_size=4"]
  assert _parse(args).loss.alpha == 0.0


def _fake_program(tmp_path):
  """A stand-in for `python -m lle.main`: fails when seed is 1, else writes results.json."""
  script = tmp_path / "fake_main.py"
  script.write_text(
      "import json, os, sys\n"
      "args = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n"
      "if args['config.seed'] == '1':\n"
      "  sys.exit('boom')\n"
      "open(os.path.join(args['workdir'], 'results.json'), 'w').write(json.dumps({'args': args}))\n"
      "with open(os.path.join(os.path.dirname(args['workdir']), 'calls.txt'), 'a') as f: f.write('x')\n")
  return [sys.executable, str(script)]


def test_failed_run_is_recorded_and_the_sweep_goes_on_and_reruns_skip_finished(tmp_path):
  spec = {"method": "grid", "parameters": {"config": {"value": "configs/itmn.py"},
                                          "config.seed": {"values": [0, 1, 2]}}}
  program = _fake_program(tmp_path)
  out = tmp_path / "sweep"
  results = sweep.run_sweep(spec, str(out), [], program=program, log=lambda *_: None)
  states = sorted((json.loads((out / n / "sweep_status.json").read_text())["state"], n) for n in results)
  assert [s for s, _ in states] == ["failed", "finished", "finished"]
  assert (out / "calls.txt").read_text() == "xx"
  again = sweep.run_sweep(spec, str(out), [], program=program, log=lambda *_: None)
  assert sum(1 for s in again.values() if s.get("skipped")) == 2  # only the failed run ran again
  assert (out / "calls.txt").read_text() == "xx"
  assert sum(1 for s in again.values() if s["state"] == "failed") == 1


def test_an_override_that_pins_a_swept_key_runs_each_distinct_run_once(tmp_path):
  spec = {"method": "grid", "parameters": {"config.seed": {"values": [0, 1, 2]}, "config.x": {"values": [4, 6]}}}
  results = sweep.run_sweep(spec, str(tmp_path / "pinned"), ["--config.seed=0"], program=_fake_program(tmp_path),
                            log=lambda *_: None)
  assert len(results) == 2 and all(s["state"] == "finished" for s in results.values())


def test_parallel_runs_finish_too(tmp_path):
  spec = {"method": "grid", "parameters": {"config.seed": {"values": [0, 2, 4, 6]}}}
  results = sweep.run_sweep(spec, str(tmp_path / "p"), [], program=_fake_program(tmp_path), parallel=2,
                            devices=[], log=lambda *_: None)
  assert sorted(s["state"] for s in results.values()) == ["finished"] * 4


def test_unknown_method_is_refused(tmp_path):
  path = tmp_path / "s.yaml"
  path.write_text("method: bayes\nparameters: {a: {value: 1}}\n")
  with pytest.raises(ValueError, match="bayes"):
    sweep.load_sweep(str(path))

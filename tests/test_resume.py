"""Runs that stop and start again: preemption by a signal, unreadable checkpoints, a changed config,
metrics.jsonl after a resume, and a batch that does not divide the device count (tiny iTMN)."""
import json
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from lle import preemption, train
from tests.conftest import REPO, copy_run
from tests.test_train import _final_params, _tiny


def _steps(workdir):
  """The steps of metrics.jsonl's training records (an evaluation adds its own record at its step)."""
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [r["step"] for r in records if "train/g_loss" in r]


def _saved(workdir, config):
  manager = train.checkpoint_manager(workdir, config)
  steps = manager.all_steps()
  manager.close()
  return sorted(steps)


def _assert_bit_identical(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)


def test_sigterm_saves_exits_75_and_the_resumed_run_is_bit_identical(tmp_path):
  n = 12
  overrides = {"num_train_steps": n, "checkpoint_every_steps": 1000}
  run = tmp_path / "run"
  proc = subprocess.Popen(
      [sys.executable, "-m", "lle.main", "--config=configs/itmn.py:tiny", f"--workdir={run}",
       "--config.eval_every_steps=1000", *[f"--config.{k}={v}" for k, v in overrides.items()]],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 300
  while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().strip()):
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-3000:]
    time.sleep(0.02)  # step 1 is logged: the loop runs
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=300)[0]
  assert proc.returncode == preemption.EXIT_CODE, out[-3000:]
  config = _tiny(**overrides)
  (stopped,) = _saved(run, config)  # one checkpoint: the step the signal let finish
  assert 1 <= stopped < n and f"stopped after step {stopped}, checkpoint saved" in out
  assert max(_steps(run)) == stopped and not (run / "results.json").exists()

  results = train.train_and_evaluate(config, run)  # the requeued run
  train.train_and_evaluate(config, tmp_path / "straight")
  assert results["step"] == n and _steps(run) == list(range(1, n + 1))
  _assert_bit_identical(_final_params(run, config), _final_params(tmp_path / "straight", config))
  starts = sorted((run / "starts").glob("*.json"))
  assert [json.loads(p.read_text())["start_step"] for p in starts] == [0, stopped]


def _truncate_files(folder):
  for f in folder.rglob("*"):
    if f.is_file():
      f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 3])


def _remove_array_files(folder):
  files = [f for f in folder.rglob("*") if f.is_file() and "metadata" not in f.name.lower()]
  assert files
  for f in files:
    f.unlink()


@pytest.mark.parametrize("damage", [_truncate_files, _remove_array_files], ids=["truncated", "half_written"])
def test_unreadable_latest_checkpoint_is_skipped_and_the_run_resumes_from_the_one_before(tmp_path, capsys, damage,
                                                                                         tiny_itmn_run):
  copy_run(tiny_itmn_run(4), tmp_path / "run")  # checkpoints 2 and 4; steps 1-4 logged
  damage(tmp_path / "run" / "checkpoints" / "4")
  capsys.readouterr()
  results = train.train_and_evaluate(_tiny(num_train_steps=6), tmp_path / "run")
  assert f"checkpoint {tmp_path / 'run' / 'checkpoints' / '4'} is unreadable" in capsys.readouterr().out
  assert (tmp_path / "run" / "checkpoints" / "4.unreadable").is_dir()  # set aside, not deleted
  assert results["step"] == 6 and _saved(tmp_path / "run", _tiny()) == [2, 4, 6]
  assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]  # steps 3-4 logged once, by the resumed run
  _assert_bit_identical(_final_params(tmp_path / "run", _tiny()), _final_params(tiny_itmn_run(6), _tiny()))


def test_a_step_unreadable_again_is_set_aside_under_a_fresh_name_and_said_in_two_lines(tmp_path, capfd,
                                                                                       tiny_itmn_run):
  """Step 4 was set aside once (`4.unreadable`), saved again, and is unreadable again: the run resumes
  from step 2 instead of stopping on the name, and the user reads one warning and one resume line, without
  Orbax's tracebacks."""
  run = copy_run(tiny_itmn_run(4), tmp_path / "run")  # checkpoints 2 and 4
  (run / "checkpoints" / "4.unreadable").mkdir()
  _remove_array_files(run / "checkpoints" / "4")
  capfd.readouterr()
  results = train.train_and_evaluate(_tiny(num_train_steps=6), run)
  out, err = capfd.readouterr()
  assert results["step"] == 6 and _saved(run, _tiny()) == [2, 4, 6]
  assert sorted(p.name for p in (run / "checkpoints").glob("4.*")) == ["4.unreadable", "4.unreadable.1"]
  warnings = [line for line in (out + err).splitlines() if "warning" in line.lower()]
  assert len(warnings) == 1 and warnings[0].startswith(f"warning: checkpoint {run / 'checkpoints' / '4'} is unreadable")
  assert "resumed from step 2" in out.splitlines()
  assert "Traceback" not in out + err and "Event loop is closed" not in out + err


def test_resume_with_a_training_change_stops_naming_the_fields(tmp_path, tiny_itmn_run):
  tmp_path = copy_run(tiny_itmn_run(2), tmp_path / "run")
  changed = _tiny(num_train_steps=4, batch_size=4)
  with changed.unlocked():
    changed.optimizer.learning_rate = 1.0
  with pytest.raises(train.ConfigChangedError, match=r"batch_size: 8 -> 4; optimizer.learning_rate: .* -> 1.0\."):
    train.train_and_evaluate(changed, tmp_path)
  assert _saved(tmp_path, changed) == [2] and json.loads((tmp_path / "config.json").read_text())["batch_size"] == 8

  longer = _tiny(num_train_steps=3, log_every_steps=3)  # run-only fields may change
  assert train.train_and_evaluate(longer, tmp_path)["step"] == 3
  assert train.train_and_evaluate(changed, tmp_path, allow_config_change=True)["step"] == 4
  starts = [json.loads(p.read_text()) for p in sorted((tmp_path / "starts").glob("*.json"))]
  assert [s["start_step"] for s in starts] == [0, 2, 3]  # every start's config is kept
  assert [s["config"]["batch_size"] for s in starts] == [8, 8, 4]
  assert starts[2]["training_changes"][0] == "batch_size: 8 -> 4"


def _devices(hosts, per_host):
  return [SimpleNamespace(id=h * per_host + i, process_index=h) for h in range(hosts) for i in range(per_host)]


@pytest.mark.parametrize("batch, hosts, per_host, expected", [
    (8, 1, 8, 8), (6, 1, 8, 6), (6, 1, 4, 3), (7, 1, 8, 7), (6, 2, 4, 6), (12, 2, 4, 6), (16, 2, 4, 8),
    (2, 2, 4, 2)])
def test_data_parallel_devices_is_the_largest_even_split(batch, hosts, per_host, expected):
  chosen = train.data_parallel_devices(batch, _devices(hosts, per_host))
  assert len(chosen) == expected and batch % len(chosen) == 0
  assert {h: sum(d.process_index == h for d in chosen) for h in range(hosts)} == {
      h: expected // hosts for h in range(hosts)}  # the same number on every host


def test_batch_that_does_not_divide_the_processes_names_the_counts_that_work():
  with pytest.raises(ValueError, match=r"batch_size=6 must divide by the 4 processes; process counts that work: "
                                       r"\[1, 2, 3, 6\]"):
    train.data_parallel_devices(6, _devices(4, 2))


def test_paper_batch_of_6_trains_on_6_of_8_devices(tmp_path, capsys):
  results = train.train_and_evaluate(_tiny(num_train_steps=2, batch_size=6), tmp_path)
  assert "batch_size=6 does not divide over 8 devices: training on 6 of them (1 per device), 2 idle" in (
      capsys.readouterr().out)
  assert results["num_devices"] == 6 and results["num_devices_available"] == 8

"""The trainer on 1 and 8 devices, resume, NaN handling and the end-to-end entry point (tiny iTMN)."""
import io
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from lle import methods, train
from tests.conftest import REPO, copy_run, load_config


def _final_params(workdir, config, devices=None):
  mesh = train.make_mesh(devices)
  _, abstract = train.init_state(methods.get(config), config, mesh)
  manager = train.checkpoint_manager(workdir, config)
  state, _ = train.restore(manager, abstract)
  manager.close()
  return jax.device_get(state)


def _tiny(**overrides):
  config = load_config("configs/itmn.py:tiny")
  with config.unlocked():
    config.eval_every_steps = 1000  # only the last step evaluates
    for k, v in overrides.items():
      config[k] = v
  return config


def assert_close_to_scale(a, b, rel):
  """|a - b| <= rel * max|a| elementwise: float32 reduction-order noise is relative to a leaf's scale,
  not to each element (an RMSProp average of 1.66e-10 beside ones of 1e9 carries noise of ~1e-3 x 1e9)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  scale = float(np.max(np.abs(a))) if a.size else 0.0
  worst = float(np.max(np.abs(a - b))) if a.size else 0.0
  assert worst <= rel * scale, f"max |difference| {worst:.3g} > {rel} x leaf scale {scale:.3g}"


def test_one_and_eight_devices_give_the_same_parameters(tmp_path, tiny_itmn_run):
  assert jax.device_count() == 8
  config = _tiny(num_train_steps=2)
  train.train_and_evaluate(config, tmp_path / "one", devices=jax.devices()[:1])
  one = _final_params(tmp_path / "one", config)
  eight = _final_params(tiny_itmn_run(2), config)  # the same config on all 8 devices
  init, _ = train.init_state(methods.get(config), config, train.make_mesh())
  for net in one:  # parameters and batch statistics agree to float32 reduction-order noise
    for a, b in zip(jax.tree.leaves((one[net].params, one[net].batch_stats)),
                    jax.tree.leaves((eight[net].params, eight[net].batch_stats))):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, b, start in zip(jax.tree.leaves(one[net].opt_state), jax.tree.leaves(eight[net].opt_state),
                           jax.tree.leaves(init[net].opt_state)):
      # RMSProp's squared-gradient averages. The second step's gradients come from parameters that differ
      # by the first step's rounding, which the discriminator's first BatchNorm amplifies: its bias average
      # differed by 1.5e-3 of its leaf's scale on an Intel Xeon (2.4e-5 after one step; 1e-5 after two on
      # an AMD EPYC). A real partitioning error (a device's share of the batch lost or counted twice)
      # moves these averages by a tenth or more.
      assert_close_to_scale(a, b, rel=5e-3)
      # The tolerance could see a real difference: two steps moved every float leaf far beyond it.
      if np.issubdtype(np.asarray(a).dtype, np.floating) and np.asarray(a).size:
        with pytest.raises(AssertionError):
          assert_close_to_scale(a, start, rel=5e-3)


def test_resumed_run_is_bit_identical(tmp_path, tiny_itmn_run):
  config = _tiny(num_train_steps=4)
  copy_run(tiny_itmn_run(2), tmp_path / "resumed")  # "interrupted" at step 2
  results = train.train_and_evaluate(config, tmp_path / "resumed")
  assert results["step"] == 4
  straight, resumed = _final_params(tiny_itmn_run(4), config), _final_params(tmp_path / "resumed", config)
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  assert steps[:2] == [1, 2] and max(steps) == 4


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_itmn_run):
  tmp_path = copy_run(tiny_itmn_run(2), tmp_path / "run")
  config = _tiny(num_train_steps=4)
  with config.unlocked():
    config.loss.lam = float("nan")
  with pytest.raises(train.NonFiniteLossError, match="non-finite values at step 3"):
    train.train_and_evaluate(config, tmp_path, allow_config_change=True)
  manager = train.checkpoint_manager(tmp_path, config)
  assert manager.all_steps() == [2]
  manager.close()
  params = _final_params(tmp_path, config)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params) if np.issubdtype(x.dtype, np.floating))


def test_main_end_to_end_writes_checkpoint_metrics_and_results(tmp_path):
  workdir = tmp_path / "run"
  out = subprocess.run([sys.executable, "-m", "lle.main", "--config=configs/itmn.py:tiny",
                        f"--workdir={workdir}", "--config.wandb.enabled=True"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if "train/g_loss" in r] == [1, 2, 3, 4]
  results = json.loads((workdir / "results.json").read_text())
  assert results["step"] == 4 and results["dataset"]["name"] == "lle_demo"
  assert set(results["model"]) == {"psnr", "ssim", "mpsnr"}
  assert set(results["baselines"]) == {"identity", "inverse_reinhard", "linear_expansion"}
  assert results["num_devices"] == 8 and results["seed"] == 0 and "commit" in results["code"]
  assert json.loads((workdir / "config.json").read_text())["method"] == "itmn"
  assert list((workdir / "images").glob("step_00000004_*.png"))
  assert (workdir / "wandb").is_dir()  # an offline W&B run
  # stdout is a pipe here: plain log lines, no progress bar; the final table and the comparison PNGs.
  assert "step 2/4  " in out.stdout and "\r" not in out.stdout
  assert "| model | " in out.stdout and "| linear_expansion | " in out.stdout
  shown = [line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("input | each baseline")]
  assert shown and all(os.path.exists(path) and "step_00000004_" in path for path in shown)


def test_evaluation_computes_any_registry_metric_by_name():
  from lle import evaluate
  config = _tiny()
  with config.unlocked():
    config.eval.metrics = ("psnr", "psnr_y", "mpsnr", "pu_psnr", "fsitm")
  rng = np.random.default_rng(0)
  pred, target = rng.random((1, 48, 48, 3), np.float32) * 0.7, rng.random((1, 48, 48, 3), np.float32) * 0.7
  scores = {col: float(v[0]) for f in evaluate.metric_fns(config).values() for col, v in f(pred, target).items()}
  assert set(scores) == {"psnr", "psnr_y", "mpsnr", "pu_psnr", "fsitm_r", "fsitm_g", "fsitm_b", "fsitm"}
  assert all(np.isfinite(v) for v in scores.values())
  same = {col: float(v[0]) for f in evaluate.metric_fns(config).values() for col, v in f(target, target).items()}
  assert same["psnr"] == np.inf and same["fsitm"] > scores["fsitm"]
  with config.unlocked():
    config.eval.metrics = ("psnr", "nope")
  with pytest.raises(ValueError, match="unknown \\['nope'\\]"):
    evaluate.metric_fns(config)


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_file():
  values = {"loss": 0.01234, "images_per_second": 41.5}
  log_file = io.StringIO()  # stdout redirected to a file (SLURM, nohup): isatty() is False
  progress = train.Progress(100, 0, desc="gladnet", stream=log_file)
  for step in range(1, 51):
    progress.update()
    if step % 25 == 0:
      progress.log(step, values)
  progress.write("step 50 eval: model psnr 20.1")
  progress.close()
  assert log_file.getvalue().splitlines() == ["step 25/100  loss 0.01234  images_per_second 41.5",
                                              "step 50/100  loss 0.01234  images_per_second 41.5",
                                              "step 50 eval: model psnr 20.1"]
  terminal = _Terminal()
  progress = train.Progress(100, 0, desc="gladnet", stream=terminal)
  for step in range(1, 51):
    progress.update()
  progress.log(50, values)
  progress.close()
  assert "\r" in terminal.getvalue() and "50/100" in terminal.getvalue() and "step 50/100" not in terminal.getvalue()
  silent = io.StringIO()
  progress = train.Progress(100, 0, desc="gladnet", active=False, stream=silent)
  progress.log(25, values)
  progress.write("x")
  assert silent.getvalue() == ""

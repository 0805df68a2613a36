"""`--mode=eval` with and without `--checkpoint_step`: a saved checkpoint scores what the run scored at
that step, with the run's own config (tiny iTMN)."""
import json
import subprocess
import sys

import pytest

from lle import train
from tests.conftest import REPO, copy_run
from tests.test_train import _tiny


def _eval_records(workdir):
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return {r["step"]: r for r in records if "eval/model/psnr" in r}


def test_eval_mode_scores_the_requested_checkpoint(tmp_path, tiny_itmn_run):
  config = _tiny(num_train_steps=4, eval_every_steps=2, checkpoint_every_steps=2)
  tmp_path = copy_run(tiny_itmn_run(4), tmp_path / "run")  # this config's run (tiny: checkpoints every 2)
  during = _eval_records(tmp_path)
  assert sorted(during) == [2, 4] and during[2]["eval/model/psnr"] != during[4]["eval/model/psnr"]

  # Without --config: the run's own config.json.
  args = [sys.executable, "-m", "lle.main", "--mode=eval", f"--workdir={tmp_path}"]
  out = subprocess.run([*args, "--checkpoint_step=2"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["step"] == 2 and ", step 2 |" in out.stdout and "| model | " in out.stdout  # the table
  for metric in ("psnr", "ssim", "mpsnr"):
    assert abs(results["model"][metric] - during[2][f"eval/model/{metric}"]) < 1e-5, metric

  with pytest.raises(FileNotFoundError, match=r"no checkpoint for step 3 .*saved steps: \[2, 4\]"):
    train.evaluate_checkpoint(config, tmp_path, step=3)
  latest = train.evaluate_checkpoint(config, tmp_path)  # what --mode=eval does without --checkpoint_step
  assert latest["step"] == 4
  assert abs(latest["model"]["psnr"] - during[4]["eval/model/psnr"]) < 1e-5
  # --results_dir: the scores go elsewhere (another data set's results), the run's own stay.
  elsewhere = train.evaluate_checkpoint(config, tmp_path, step=2, results_dir=tmp_path / "elsewhere")
  assert json.loads((tmp_path / "elsewhere" / "results.json").read_text())["step"] == elsewhere["step"] == 2
  assert json.loads((tmp_path / "results.json").read_text())["step"] == 4

import subprocess
import sys

from tests.conftest import REPO


def _run(*args):
  return subprocess.run([sys.executable, "-m", "lle.main", *args], cwd=REPO, capture_output=True, text=True)


def test_unknown_override_is_a_one_line_error_naming_near_keys():
  out = _run("--config=configs/itmn.py:tiny", "--config.loss.alhpa=3", "--mode=summary")
  assert out.returncode == 2
  assert out.stderr.strip() == "error: config has no key 'loss.alhpa'; nearest valid keys: loss.alpha, loss.lam"
  out = _run("--config=configs/itmn.py:tiny", "--config.batch_sise=3", "--mode=summary")
  assert out.returncode == 2 and "'batch_sise'" in out.stderr and "batch_size" in out.stderr
  assert "Traceback" not in out.stderr


def test_summary_prints_parameters_and_flops():
  out = _run("--config=configs/itmn.py:tiny", "--mode=summary", "--config.data.crop_size=64")
  assert out.returncode == 0, out.stderr
  rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.startswith(("gen", "disc"))}
  assert rows["gen"][1] == "1,635" and rows["gen"][2] == "64x64x3"
  assert float(rows["gen"][3]) > 0

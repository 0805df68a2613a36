"""The commands facing a user's mistakes: config values checked before anything is written, one `error:`
line without a traceback (LLE_TRACEBACK=1 for one), paths relative to the folder a command starts in,
and `summary` without VGG weights."""
import os
import subprocess
import sys

import pytest

from lle import cli, train
from tests.conftest import REPO
from tests.test_train import _tiny


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "config.batch_size=0: must be positive"),
    ("batch_size", -8, "config.batch_size=-8: must be positive"),
    ("num_train_steps", 0, "config.num_train_steps=0: nothing to train"),
    ("log_every_steps", 0, "config.log_every_steps=0: must be positive"),
    ("checkpoint_every_steps", 0, "config.checkpoint_every_steps=0: must be positive"),
    ("data.crop_size", -8, "config.data.crop_size=-8: must be positive"),
    ("data.worker_count", -2, "config.data.worker_count=-2: must be -1"),
    ("eval.tile_size", 0, "config.eval.tile_size=0: must be positive"),
    ("data.cache_mb", -1, "config.data.cache_mb=-1: must be zero or more"),
])
def test_config_values_are_checked_before_anything_is_written(tmp_path, field, value, message):
  config = _tiny()
  parent, _, leaf = field.rpartition(".")
  with config.unlocked():
    (config[parent] if parent else config)[leaf] = value
  with pytest.raises(cli.UsageError, match=message):
    train.train_and_evaluate(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def _lle(*args, env=None, cwd=REPO, module="lle.main"):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                        timeout=300, env={**os.environ, **(env or {})})


def _one_error_line(out, code):
  assert out.returncode == code and out.stderr.count("\n") == 1, (out.returncode, out.stderr[-3000:])
  assert out.stderr.startswith("error: ") and "Traceback" not in out.stdout + out.stderr
  return out.stderr.strip()


def test_mistakes_end_in_one_error_line(tmp_path):
  (tmp_path / "afile").write_text("x")
  tiny = "--config=configs/gladnet.py:tiny"
  line = _one_error_line(_lle("--config=configs/nope.py", f"--workdir={tmp_path / 'run'}"), 2)
  assert line.startswith("error: config file 'configs/nope.py' is neither in ")
  line = _one_error_line(_lle(tiny, f"--workdir={tmp_path / 'afile'}"), 1)
  assert line == f"error: --workdir {tmp_path / 'afile'} is a file, not a folder"
  line = _one_error_line(_lle(tiny, f"--workdir={tmp_path / 'afile' / 'run'}"), 1)
  assert line == f"error: --workdir {tmp_path / 'afile' / 'run'}: {tmp_path / 'afile'} is a file, not a folder"
  empty = tmp_path / "tfds"
  line = _one_error_line(_lle(tiny, "--config.data.name=lol/v1", f"--config.data.data_dir={empty}",
                              f"--workdir={tmp_path / 'run'}"), 1)
  assert line == (f"error: data set 'lol/v1' is not built in {empty}; build it from your downloaded copy with "
                  f"`./launch.sh python -m lle.data.build lol/v1 --manual_dir=DIR --data_dir={empty}`")
  assert not (tmp_path / "run").exists()
  line = _one_error_line(_lle("--mode=eval", f"--workdir={tmp_path / 'run'}"), 1)
  assert line == f"error: no run in {tmp_path / 'run'} (no such folder)"
  # LLE_TRACEBACK=1: the traceback, for a report.
  out = _lle(tiny, f"--workdir={tmp_path / 'afile'}", env={"LLE_TRACEBACK": "1"})
  assert out.returncode == 1 and "Traceback" in out.stderr and "NotADirectoryError" in out.stderr


def test_missing_vgg_weights_name_the_command_that_converts_them(tmp_path, monkeypatch):
  from lle import methods
  from tests.conftest import load_config
  monkeypatch.setenv("LLE_WEIGHTS_DIR", str(tmp_path))
  config = load_config("configs/tmgan.py:tiny")
  config.loss.perceptual_weight = 1.0
  with pytest.raises(FileNotFoundError) as e:
    train.init_state(methods.get(config), config, train.make_mesh())
  assert "\n" not in str(e.value) and ("convert the official file once: ./launch.sh python -m lle.weights vgg19 "
                                       f"--from FILE --id {config.loss.perceptual.weights}") in str(e.value)


def test_summary_needs_no_vgg_weights(tmp_path):
  out = _lle("--mode=summary", "--config=configs/tmgan.py:tiny", "--config.loss.perceptual_weight=1.0",
             env={"LLE_WEIGHTS_DIR": str(tmp_path)})
  assert out.returncode == 0, out.stderr[-3000:]
  assert {line.split()[0] for line in out.stdout.splitlines()[2:]} == {"gen", "disc"}


def test_launcher_keeps_the_callers_folder_for_paths_and_finds_lles_configs(tmp_path):
  """`launch.sh` from another folder: a relative --workdir is that folder's (not the repository's), and
  `--config=configs/...` is still lle's own."""
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  (elsewhere / "afile").write_text("x")
  env = {**os.environ, "LLE_VENV": os.path.dirname(os.path.dirname(sys.executable))}
  launch = [os.path.join(REPO, "launch.sh")]
  out = subprocess.run([*launch, "python", "-c", "import os; print(os.getcwd())"], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.stdout.strip() == str(elsewhere), out.stderr[-2000:]
  out = subprocess.run([*launch, "train", "--config=configs/gladnet.py:tiny", "--workdir=afile"], cwd=elsewhere,
                       env=env, capture_output=True, text=True, timeout=300)
  assert _one_error_line(out, 1) == f"error: --workdir {elsewhere / 'afile'} is a file, not a folder"
  assert not os.path.exists(os.path.join(REPO, "afile"))

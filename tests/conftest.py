"""Test set-up: 8 fake CPU devices (so data-parallel paths run for real), a private TFDS data dir, W&B
offline, and less compile work (tiny models: compile time dominates): a smaller XLA optimisation effort,
and one persistent compilation cache per test run, shared by pytest-xdist's workers and by the
subprocesses the tests start (set through the environment, so `python -m lle.main` children inherit it).
"""
import fcntl
import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# One cache per run (xdist workers share the run's uid): timings stay those of a cold start.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"lle-test-jax-{_RUN}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402,F401
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_folder(tmp_path_factory):
  """The folder of this test run that all pytest-xdist workers share (the parent of their base temps)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_folder(tmp_path_factory, name: str, make):
  """`make(path)` once per test run, whichever worker asks first (the others wait on a file lock), then
  the same folder for every test that asks: a trained run that several tests only read. A test that
  changes it (resumes it, damages a checkpoint) works on a copy (`copy_run`)."""
  root = _run_folder(tmp_path_factory) / "shared"
  root.mkdir(exist_ok=True)
  path, done = root / name, root / f"{name}.done"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)  # a make that failed half-way
      make(path)
      done.touch()
  return path


def copy_run(source, destination):
  """A private copy of a shared run folder, to resume or damage."""
  shutil.copytree(source, destination)
  return destination


@pytest.fixture(scope="session")
def tiny_itmn_run(tmp_path_factory):
  """`tiny_itmn_run(steps)`: the folder of tests.test_train's tiny iTMN run (`_tiny(num_train_steps=steps,
  eval_every_steps=2)`: 8 devices, checkpoints and evaluations every 2 steps) trained once per test run:
  training it again in each test that resumes, evaluates or compares against it cost 10-40 s a time.
  The evaluations leave the parameters as they are (and eval_every_steps may change on a resume)."""
  from lle import train
  from tests.test_train import _tiny

  def run(steps: int):
    config = _tiny(num_train_steps=steps, eval_every_steps=2)
    return shared_folder(tmp_path_factory, f"tiny_itmn_{steps}_steps",
                         lambda path: train.train_and_evaluate(config, path))
  return run


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
  """One TFDS data dir per test session; the demo data set is built into it on first use."""
  # xdist workers share the run's base folder, so the demo data set is built once per run (under the
  # builder's file lock), not once per worker.
  path = os.environ.get("LLE_TEST_TFDS_DIR") or str(_run_folder(tmp_path_factory) / "tfds")
  os.makedirs(path, exist_ok=True)
  os.environ["TFDS_DATA_DIR"] = path
  return path


def load_config(spec: str):
  """`configs/itmn.py:tiny` -> ConfigDict, as `--config=` loads it."""
  from lle import config_lib
  return config_lib.load(os.path.join(REPO, spec))


@pytest.fixture(scope="session")
def fake_vgg_weights(tmp_path_factory):
  """$LLE_WEIGHTS_DIR holding random (He-scaled) VGG-19 weights converted by `lle.weights` from a file in
  Keras' layout, under the ids the tmgan and iqe configs name (`vgg19_keras`, `vgg19_matconvnet`): the
  real loading path, without ImageNet weights."""
  from lle import weights
  from tests.test_weights import _random_vgg, _write_h5
  root = tmp_path_factory.mktemp("weights")
  source = root / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
  _write_h5(source, _random_vgg(19))
  weights.convert("vgg19", str(source), name="vgg19_keras", out_dir=str(root))
  source.unlink()
  params, preprocess, _ = weights.load("vgg19_keras", root=str(root))  # and under DPED's id (iqe)
  weights.save({k: (v["kernel"], v["bias"]) for k, v in params.items()}, arch="vgg19", source="matconvnet",
               preprocess=weights.PREPROCESS["matconvnet"], name="vgg19_matconvnet", out_dir=str(root))
  old = os.environ.get("LLE_WEIGHTS_DIR")
  os.environ["LLE_WEIGHTS_DIR"] = str(root)
  yield str(root)
  if old is None:
    os.environ.pop("LLE_WEIGHTS_DIR", None)
  else:
    os.environ["LLE_WEIGHTS_DIR"] = old

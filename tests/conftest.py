"""Test set-up: 8 fake CPU devices (so data-parallel paths run for real), a private TFDS data dir, W&B
offline, and a smaller XLA optimisation effort (tiny models: compile time dominates)."""
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
  """One TFDS data dir per test session; the demo data set is built into it on first use."""
  path = os.environ.get("LLE_TEST_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))
  os.environ["TFDS_DATA_DIR"] = path
  return path


def load_config(spec: str):
  """`configs/itmn.py:tiny` -> ConfigDict, as `--config=` loads it."""
  from lle import config_lib
  return config_lib.load(os.path.join(REPO, spec))

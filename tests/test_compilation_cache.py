"""The persistent compilation cache: on by default in lle's cache folder, switched by environment, and a
second run of the same config loads its train step instead of compiling it."""
import json
import os
import re
import subprocess
import sys

import jax
import pytest

from lle import train
from tests.conftest import REPO


@pytest.fixture
def jax_cache_config():
  saved = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
  yield
  jax.config.update("jax_compilation_cache_dir", saved[0])
  jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])


def test_cache_folder_from_environment(monkeypatch, tmp_path, jax_cache_config):
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  monkeypatch.delenv("LLE_COMPILATION_CACHE", raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))
  assert train.setup_compilation_cache() == str(tmp_path / ".cache/lle/jax_compilation_cache")
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / ".cache/lle/jax_compilation_cache")
  monkeypatch.setenv("LLE_COMPILATION_CACHE", str(tmp_path / "mine"))
  assert train.setup_compilation_cache() == str(tmp_path / "mine")
  monkeypatch.setenv("LLE_COMPILATION_CACHE", "off")
  assert train.setup_compilation_cache() is None
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))  # JAX's own switch wins
  assert train.setup_compilation_cache() == str(tmp_path / "jax")


def _run(workdir, cache):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT_CACHE")}
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  env.update(LLE_COMPILATION_CACHE=str(cache), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  out = subprocess.run([sys.executable, "-m", "lle.main", "--config=configs/gladnet.py:tiny",
                        "--config.num_train_steps=1", f"--workdir={workdir}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
  assert f"persistent compilation cache: {cache}" in out.stdout
  seconds = float(re.search(r"train step compiled in ([\d.]+) s", out.stdout).group(1))
  record = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[0])
  assert record["train/compile_seconds"] == pytest.approx(seconds, abs=0.06)
  return seconds


def test_second_run_loads_the_train_step_from_the_cache(tmp_path):
  cache = tmp_path / "cache"
  first = _run(tmp_path / "a", cache)
  entries = sorted(p.name for p in cache.iterdir())
  assert any("train_step" in e for e in entries), entries  # written by the first run
  second = _run(tmp_path / "b", cache)
  # The second run found its train step under the first run's key: no other train-step entry was written.
  # (Small programs such as init compile in about the cache's 0.5 s floor, so whichever run compiles one
  # more slowly may add it: not a miss. Seconds are printed for the benchmark note, not asserted.)
  steps = lambda names: sorted(n for n in names if "train_step" in n)
  assert steps(p.name for p in cache.iterdir()) == steps(entries)
  assert set(entries) <= {p.name for p in cache.iterdir()}
  print(f"train step compile: first run {first:.2f} s, second run {second:.2f} s")

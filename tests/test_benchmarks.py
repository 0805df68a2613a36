"""The training benchmark feeds each method the batch its data recipe makes, and runs NEID (whose input
is smaller than its target)."""
import functools
import importlib.util
import os
import subprocess
import sys

import pytest

from lle.data import pipeline
from tests.conftest import REPO, load_config


@functools.cache  # once per process: the script defines absl flags
def _bench_train():
  sys.path.insert(0, os.path.join(REPO, "benchmarks"))  # bench_train imports benchmarks/memory.py
  spec = importlib.util.spec_from_file_location("bench_train", os.path.join(REPO, "benchmarks", "bench_train.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("spec", ["configs/itmn.py:tiny", "configs/gladnet.py:tiny", "configs/neid.py:tiny"])
def test_synthetic_batch_has_the_shapes_of_the_real_training_batch(spec):
  config = load_config(spec)
  real = pipeline.train_dataset(config)[0]
  assert _bench_train().batch_shapes(config) == {k: v.shape for k, v in real.items()}


def test_bench_train_runs_neid_and_prints_its_sizes():
  proc = subprocess.run([sys.executable, "benchmarks/bench_train.py", "--configs=configs/neid.py:tiny", "--steps=1"],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  row = next(line for line in proc.stdout.splitlines() if line.startswith("| configs/neid.py:tiny"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[2] == "8" and cells[3] == "16x16 -> 32x32"  # batch; NEID tiny: 32x32 targets, 2x smaller input
  assert float(cells[4]) > 0  # images/s

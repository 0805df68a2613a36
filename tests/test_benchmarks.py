"""The training benchmark feeds each method the batch its data recipe makes, and runs NEID (whose input
is smaller than its target); the accelerator check runs every kind of row at reduced sizes."""
import functools
import importlib.util
import json
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


def _accelerator_check(tmp_path, *args):
  """benchmarks/accelerator_check.py --smoke ARGS: (its JSON, its printed table)."""
  out = tmp_path / "check.json"
  proc = subprocess.run([sys.executable, "benchmarks/accelerator_check.py", "--smoke", f"--out={out}", *args],
                        cwd=REPO, capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(out.read_text())
  assert result["table"] in proc.stdout and len(result["table"].splitlines()) == len(result["rows"]) + 2
  return result


def test_accelerator_check_smoke_measures_every_kind_of_row(tmp_path):
  """One method's every row on the CPU (the tests' 8 CPU devices give the sharded step): lle's step in both
  layer forms and in bfloat16, the input pipeline on synthetic LOL files, torch where installed."""
  result = _accelerator_check(tmp_path, "--methods=gladnet")
  assert result["machine"]["platform"] == "cpu" and result["machine"]["local_devices"] == 8
  rows = {(r["part"], r["system"], r["forms"], r["dtype"], r["TF32"]): r for r in result["rows"]}
  assert len(rows) == len(result["rows"]) == 11  # 9 train-step rows, the pipeline, the sharded step
  for forms, dtype in (("plain", "float32"), ("cpu", "float32"), ("plain", "bfloat16")):
    row = rows["train step", "lle", forms, dtype, "off"]
    assert row["status"] == "ok", row
    assert (row["devices"], row["batch"], row["size"]) == ("1x cpu", 8, "32x32 -> 32x32")  # gladnet tiny
    assert row["images/s"] > 0 and row["step ms"] > 0 and row["compile s"] > 0 and row["memory MB"] > 0
  sharded = rows["sharded train step", "lle", "plain", "float32", "off"]
  assert sharded["status"] == "ok" and sharded["devices"] == "8x cpu"
  pipeline = rows["input pipeline", "pipeline", "-", "-", "-"]
  assert pipeline["status"] == "ok (lol/v1, synthetic files, 0 worker processes, cache 0 MB)", pipeline
  assert pipeline["images/s"] > 0 and pipeline["size"] == "32x32x3"
  assert rows["train step", "lle", "plain", "float32", "on"]["status"] == "not measured: the cpu backend has no TF32"
  eager, compiled = (rows["train step", s, "-", "float32", "off"]["status"] for s in ("torch eager", "torch.compile"))
  if importlib.util.find_spec("torch") is None:
    assert eager == compiled == "torch not installed (LLE_EXTRAS=bench)"
  else:  # torch.compile's first step on a CPU can outlast the smoke run's row limit: then the row says so
    assert eager == "ok" and (compiled == "ok" or compiled.startswith("stopped after")), (eager, compiled)


def test_accelerator_check_builds_every_synthetic_data_set(tmp_path):
  """The input-pipeline rows of the other data sets' layouts (HDR scenes, FiveK, DPED), through their
  builders and the configs' recipes."""
  result = _accelerator_check(tmp_path, "--methods=itmn,tmgan,iqe", "--parts=pipeline")
  names = {r["method"]: r["status"] for r in result["rows"]}
  assert names == {m: f"ok ({name}, synthetic files, 0 worker processes, cache 0 MB)" for m, name in (
      ("itmn", "hdr/mixture"), ("tmgan", "mit_fivek/expert_c_montulet"), ("iqe", "dped/iphone"))}

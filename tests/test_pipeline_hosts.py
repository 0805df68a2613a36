"""Each host decodes only its own rows of every global batch (issue: decoding work per host must not grow
with the number of hosts), and the rows of all hosts put together are the one-host batch."""
import os
import subprocess
import sys

import grain
import numpy as np

from lle.data import pipeline
from tests.conftest import REPO, load_config
from tests.test_multiprocess import _free_port

SCRIPT = """
import sys
import jax
import numpy as np
from lle import config_lib
from lle.data import pipeline

port, process_id, spec, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
decoded = []
make_pair = pipeline.make_pair
def counting_make_pair(example, data_config):
  decoded.append(example["name"])
  return make_pair(example, data_config)
pipeline.make_pair = counting_make_pair  # every recipe decodes an example through make_pair
config = config_lib.load(spec)
batches = pipeline.train_dataset(config)  # random access: no read-ahead in the count
arrays = {f"{i}/{k}": v for i in range(3) for k, v in batches[2 + i].items()}
np.savez(out, decoded=np.asarray(len(decoded)), **arrays)
"""


class _CountingSource:
  def __init__(self, n):
    self.n, self.reads = n, []

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    self.reads.append(i)
    return {"x": np.full((2,), i, np.int64)}


def test_host_rows_partition_the_global_batch_and_each_host_reads_only_its_rows():
  source = _CountingSource(10)
  stream = grain.MapDataset.source(source).seed(0).shuffle().repeat(None)
  one_host = pipeline._host_batches(stream, 4, 1, 0)[5]["x"]
  source.reads.clear()
  parts = [pipeline._host_batches(stream, 4, 2, h)[5]["x"] for h in range(2)]
  assert len(source.reads) == 4  # 2 rows per host, nothing decoded twice
  np.testing.assert_array_equal(np.concatenate(parts), one_host)
  assert [p.shape for p in parts] == [(2, 2), (2, 2)]


def test_two_processes_each_decode_half_of_every_batch(tmp_path):
  spec = f"{REPO}/configs/itmn.py:tiny"
  config = load_config("configs/itmn.py:tiny")
  expected = pipeline.train_dataset(config)  # one process; also builds the demo data first
  script = tmp_path / "read.py"
  script.write_text(SCRIPT)
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  procs = [subprocess.Popen([sys.executable, str(script), str(port), str(i), spec, str(tmp_path / f"{i}.npz")],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  got = [np.load(tmp_path / f"{i}.npz") for i in range(2)]
  half = config.batch_size // 2
  assert [int(g["decoded"]) for g in got] == [3 * half, 3 * half]  # not 3 * batch_size each
  for i in range(3):
    for key, value in expected[2 + i].items():
      np.testing.assert_array_equal(np.concatenate([g[f"{i}/{key}"] for g in got]), value)

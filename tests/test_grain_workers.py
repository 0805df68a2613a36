"""grain worker processes (`data.worker_count > 0`) give the batches the in-process pipeline gives."""
import subprocess
import sys

import numpy as np

from lle.data import pipeline
from tests.conftest import REPO, load_config

# Workers are spawned processes: they need a `__main__` guard and absl flags parsed (app.run), as in lle.main.
SCRIPT = """
import sys
from absl import app

def main(argv):
  import numpy as np
  from lle import config_lib
  from lle.data import pipeline
  config = config_lib.load(argv[1])
  config.data.worker_count = 2
  batches = pipeline.train_iterator(config, start_step=3)
  np.savez(argv[2], **{f"{i}/{k}": v for i in range(3) for k, v in next(batches).items()})

if __name__ == "__main__":
  app.run(main)
"""


def test_worker_processes_give_the_same_batches_as_threads(tmp_path):
  spec = "configs/neid.py:tiny"  # three arrays per batch: input, target, input_hr
  config = load_config(spec)
  expected = pipeline.train_dataset(config)  # also builds the demo data before the workers start
  script = tmp_path / "read_batches.py"
  script.write_text(SCRIPT)
  out = subprocess.run([sys.executable, str(script), f"{REPO}/{spec}", str(tmp_path / "batches.npz")],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  got = np.load(tmp_path / "batches.npz")
  assert sorted(got.files) == sorted(f"{i}/{k}" for i in range(3) for k in ("input", "target", "input_hr"))
  for i in range(3):
    for key, value in expected[3 + i].items():
      np.testing.assert_array_equal(got[f"{i}/{key}"], value)

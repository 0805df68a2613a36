"""Two local processes (jax.distributed over CPU, 4 devices each) train like one process with 8 devices,
and stop together on a preemption signal."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np

from lle import methods, train
from tests.conftest import REPO, load_config


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _params(workdir, config):
  _, abstract = train.init_state(methods.get(config), config, train.make_mesh())
  manager = train.checkpoint_manager(workdir, config)
  state, step = train.restore(manager, abstract)
  manager.close()
  return jax.device_get(state), step


def test_two_processes_match_one_process_with_the_same_devices(tmp_path, tiny_itmn_run):
  config = load_config("configs/itmn.py:tiny")
  with config.unlocked():
    config.num_train_steps = 2
  # 1 process x 8 devices: the tiny run's 2 steps (evaluated only at its end, which leaves the parameters).
  single_run = tiny_itmn_run(2)

  port = _free_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  args = [sys.executable, "-m", "lle.main", "--config=configs/itmn.py:tiny", "--config.num_train_steps=2",
          f"--workdir={tmp_path / 'multi'}", f"--coordinator_address=localhost:{port}", "--num_processes=2"]
  procs = [subprocess.Popen(args + [f"--process_id={i}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=400)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  assert "8 devices (cpu), 2 process(es)" in outputs[0]

  results = json.loads((tmp_path / "multi" / "results.json").read_text())
  assert results["num_processes"] == 2 and results["num_devices"] == 8 and results["step"] == 2
  single, _ = _params(single_run, config)
  multi, step = _params(tmp_path / "multi", config)
  assert step == 2
  for net in single:
    for a, b in zip(jax.tree.leaves(single[net].params), jax.tree.leaves(multi[net].params)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_signal_to_one_process_stops_both_at_the_same_step_with_a_checkpoint(tmp_path):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  workdir = tmp_path / "run"
  args = [sys.executable, "-m", "lle.main", "--config=configs/itmn.py:tiny", "--config.num_train_steps=60",
          "--config.checkpoint_every_steps=1000", "--config.eval_every_steps=1000", f"--workdir={workdir}",
          f"--coordinator_address=localhost:{port}", "--num_processes=2"]
  procs = [subprocess.Popen(args + [f"--process_id={i}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  deadline = time.time() + 300
  while not ((workdir / "metrics.jsonl").exists() and (workdir / "metrics.jsonl").read_text().strip()):
    assert all(p.poll() is None for p in procs) and time.time() < deadline
    time.sleep(0.02)
  procs[1].send_signal(signal.SIGUSR1)  # SLURM's time-limit warning, to the second process only
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  assert [p.returncode for p in procs] == [75, 75], outputs[0][-2000:] + outputs[1][-2000:]
  stopped = [int(re.search(r"stopped after step (\d+)", out).group(1)) for out in outputs]
  assert stopped[0] == stopped[1] < 60
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [str(stopped[0])]

"""`launch.sh slurm ...` as an sbatch job runs it, with stand-ins for `srun` and `scontrol` that start
one local process per "node" with the variables SLURM sets (so jax.distributed finds its cluster itself)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from lle import sweep
from tests.conftest import REPO

FAKE_SRUN = """#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_SLURM_LOG"
[[ -n "${FAKE_SRUN_EXIT:-}" ]] && exit "$FAKE_SRUN_EXIT"
while [[ "$1" == --* ]]; do shift; done   # srun's own options
pids=()
for ((i = 0; i < SLURM_NNODES; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=0 SLURM_NTASKS=$SLURM_NNODES SLURM_STEP_NUM_NODES=$SLURM_NNODES \\
    SLURM_STEP_NODELIST=localhost "$@" > "$FAKE_SLURM_LOG.task$i" 2>&1 &
  pids+=($!)
done
code=0
for pid in "${pids[@]}"; do wait "$pid" || code=$?; done
exit $code
"""


def _job_id_with_free_port():
  """A SLURM job id whose coordinator port (jax: job id % 4096 + 61440) is free here."""
  for job_id in range(1000, 1000 + 4096):
    with socket.socket() as s:
      try:
        s.bind(("localhost", job_id % 4096 + 61440))
        return job_id
      except OSError:
        continue
  raise RuntimeError("no free port in 61440-65535")


@pytest.fixture
def slurm_env(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "srun").write_text(FAKE_SRUN)
  (bin_dir / "scontrol").write_text('#!/usr/bin/env bash\necho "scontrol $*" >> "$FAKE_SLURM_LOG"\n')
  for tool in ("srun", "scontrol"):
    (bin_dir / tool).chmod(0o755)
  env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_LOG=str(tmp_path / "slurm.log"),
             SLURM_JOB_ID=str(_job_id_with_free_port()), SLURM_NNODES="2", SLURM_SUBMIT_DIR=REPO,
             LLE_VENV=os.path.dirname(os.path.dirname(sys.executable)),
             XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID"):
    env.pop(key, None)
  return env


def _launch(env, *args, timeout=400):
  return subprocess.run(["bash", os.path.join(REPO, "launch.sh"), "slurm", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_slurm_train_runs_one_process_per_node_with_jax_distributed(tmp_path, slurm_env):
  out = _launch(slurm_env, "train", "--config=configs/itmn.py:tiny", "--config.num_train_steps=2",
                f"--workdir={tmp_path / 'run'}")
  log = (tmp_path / "slurm.log").read_text()
  assert out.returncode == 0, out.stderr[-2000:] + (tmp_path / "slurm.log.task0").read_text()[-3000:]
  assert log.splitlines()[0] == (f"srun --ntasks-per-node=1 --kill-on-bad-exit=1 {REPO}/launch.sh train "
                                 f"--distributed --config=configs/itmn.py:tiny --config.num_train_steps=2 "
                                 f"--workdir={tmp_path / 'run'}")
  assert "8 devices (cpu), 2 process(es)" in (tmp_path / "slurm.log.task0").read_text()
  results = json.loads((tmp_path / "run" / "results.json").read_text())
  assert results["num_processes"] == 2 and results["num_devices"] == 8 and results["step"] == 2
  assert "scontrol" not in log


def test_slurm_train_requeues_a_preempted_run(tmp_path, slurm_env):
  out = _launch(dict(slurm_env, FAKE_SRUN_EXIT="75"), "train", "--config=configs/itmn.py:tiny",
                f"--workdir={tmp_path / 'run'}")
  assert out.returncode == 75 and "requeueing job" in out.stderr
  assert (tmp_path / "slurm.log").read_text().splitlines()[-1] == f"scontrol requeue {slurm_env['SLURM_JOB_ID']}"


def test_slurm_sweep_array_task_runs_its_shard(tmp_path, slurm_env):
  path = os.path.join(REPO, "sweeps", "itmn_alpha_lambda.yaml")
  all_runs = [" ".join(sweep.with_overrides(r, [])) for r in sweep.expand(sweep.load_sweep(path))]
  shards = []
  for task in range(4):
    env = dict(slurm_env, SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_COUNT="4")
    out = _launch(env, "sweep", path, f"--workdir={tmp_path}", "--dry_run", timeout=120)
    assert out.returncode == 0, out.stderr
    shards.append(out.stdout.splitlines())
  assert [len(s) for s in shards] == [7, 7, 7, 6]  # 27 runs over 4 array tasks
  assert sorted(sum(shards, [])) == sorted(all_runs)


def test_outside_a_job_launch_slurm_says_how_to_submit(slurm_env):
  env = {k: v for k, v in slurm_env.items() if k != "SLURM_JOB_ID"}
  out = _launch(env, "train", timeout=60)
  assert out.returncode != 0 and "sbatch --nodes=2 launch.sh slurm train" in out.stderr

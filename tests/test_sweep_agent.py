"""Each sweep file run the way `wandb agent` runs it: wandb's own Agent builds the command from the YAML
(`${env} python -m lle.main ${args}`) and the environment (WANDB_SWEEP_ID, WANDB_RUN_ID, the sweep
parameter file); no server is needed for a run command, and W&B stays offline."""
import glob
import os
import subprocess
import sys

import pytest
import yaml
from wandb import wandb_agent

from lle import logger
from lle import sweep
from tests.conftest import REPO

SWEEP_FILES = sorted(glob.glob(os.path.join(REPO, "sweeps", "*.yaml")))


@pytest.mark.parametrize("path", SWEEP_FILES, ids=os.path.basename)
def test_agent_run_of_each_sweep_file_trains_into_its_derived_workdir(path, tmp_path, monkeypatch):
  spec = yaml.safe_load(open(path))
  run = sweep.expand(spec, count=1)[0]  # the first run the controller would send
  config_file = run["config"].partition(":")[0]
  run["config"] = sweep._merge_config(run["config"], f"{config_file}:tiny")  # tiny size, the swept variant kept
  run["config.wandb.enabled"] = True
  sweep_id, run_id = "sweep01", "run-" + os.path.basename(path)[:-len(".yaml")].replace("_", "-")
  monkeypatch.chdir(REPO)
  # The agent sets these in its own environment; monkeypatch restores them after the test.
  for key, value in {"WANDB_SWEEP_ID": sweep_id, "WANDB_RUN_ID": "", "WANDB_SWEEP_PARAM_PATH": "",
                     "WANDB_DIR": str(tmp_path / "agent"), "WANDB_MODE": "offline",
                     "LLE_RUNS_DIR": str(tmp_path / "runs"),
                     "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}.items():
    monkeypatch.setenv(key, value)
  os.makedirs(tmp_path / "agent")

  agent = wandb_agent.Agent(api=None, queue=None, sweep_id=sweep_id)
  agent._sweep_command = spec["command"]  # what `wandb agent` reads from the sweep on the server
  agent._command_run({"type": "run", "run_id": run_id, "program": spec["program"],
                      "args": {k: {"value": v} for k, v in run.items()}})
  process = agent._run_processes[run_id]
  assert process._popen.args[:4] == ["/usr/bin/env", "python", "-m", "lle.main"]
  assert "--workdir" not in " ".join(process._popen.args)
  assert process.wait() == 0

  workdir = tmp_path / "runs" / sweep_id / run_id
  assert (workdir / "results.json").exists()
  (wandb_file,) = glob.glob(str(workdir / "wandb" / f"offline-run-*-{run_id}" / f"run-{run_id}.wandb"))
  records = open(wandb_file, "rb").read()
  for needle in (run_id, sweep_id, spec["metric"]["name"]):  # the controller's run, sweep and metric
    assert needle.encode() in records, needle


def test_sweep_agent_workdir_only_under_an_agent():
  assert logger.sweep_agent_workdir({}) is None
  assert logger.sweep_agent_workdir({"WANDB_RUN_ID": "abc"}) is None  # a resumed plain run, not an agent
  env = {"WANDB_SWEEP_ID": "s1", "WANDB_RUN_ID": "abc"}
  assert logger.sweep_agent_workdir(env) == os.path.join("runs", "s1", "abc")
  assert logger.sweep_agent_workdir({**env, "LLE_RUNS_DIR": "/scratch/x"}) == "/scratch/x/s1/abc"


def test_missing_workdir_outside_an_agent_is_an_error(tmp_path):
  env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SWEEP_ID", "WANDB_RUN_ID")}
  out = subprocess.run([sys.executable, "-m", "lle.main", "--config=configs/itmn.py:tiny"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0 and "--workdir is required" in out.stderr

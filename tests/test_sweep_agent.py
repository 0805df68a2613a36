"""Each sweep file run the way `wandb agent` runs it: wandb's own Agent builds the command from the YAML
(`${env} python -m lle.main ${args}`) and the environment (WANDB_SWEEP_ID, WANDB_RUN_ID, the sweep
parameter file); no server is needed for a run command, and W&B stays offline. `./launch.sh agent` itself
runs against a stand-in W&B server (the GraphQL calls an agent makes) with a foreign `python` first on PATH."""
import glob
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
import yaml
from wandb import wandb_agent

from lle import config_lib
from lle import logger
from lle import sweep
from tests.conftest import REPO

SWEEP_FILES = sorted(glob.glob(os.path.join(REPO, "sweeps", "*.yaml")))
# The launcher test below runs this file's first run through `./launch.sh agent` (a real wandb agent), with
# the per-file test's checks on its command: a second tiny run of it here would train the same run again.
LAUNCHER_SWEEP = os.path.join(REPO, "sweeps", "neid_ablation.yaml")
TINY_STEPS = 4  # config_lib.tiny_run


def _assert_agent_run(workdir, run_id, sweep_id, metric):
  """results.json of a tiny run, and the controller's run, sweep and metric in the run's W&B records."""
  assert json.loads((workdir / "results.json").read_text())["step"] == TINY_STEPS
  (wandb_file,) = glob.glob(str(workdir / "wandb" / f"offline-run-*-{run_id}" / f"run-{run_id}.wandb"))
  records = open(wandb_file, "rb").read()
  for needle in (run_id, sweep_id, metric):
    assert needle.encode() in records, needle


def _assert_agent_command(args):
  """The run command wandb's agent builds from a sweep file at tiny size: lle's entry point through
  `/usr/bin/env python`, the documented tiny variant, and no --workdir (the agent's run derives it)."""
  assert args[:4] == ["/usr/bin/env", "python", "-m", "lle.main"], args
  assert "--variants=tiny" in args and "--workdir" not in " ".join(args), args


@pytest.mark.parametrize("path", [p for p in SWEEP_FILES if p != LAUNCHER_SWEEP], ids=os.path.basename)
def test_agent_run_of_each_sweep_file_trains_into_its_derived_workdir(path, tmp_path, monkeypatch):
  """A plain `wandb agent` (lle's python on PATH) started outside the repository, the sweep at tiny size
  through its documented parameter `variants: {value: tiny}`; the tiny variants turn W&B off, the agent
  turns it back on."""
  spec = yaml.safe_load(open(path))
  spec["parameters"]["variants"] = {"value": "tiny"}
  run = sweep.expand(spec, count=1)[0]  # the first run the controller would send
  sweep_id, run_id = "sweep01", "run-" + os.path.basename(path)[:-len(".yaml")].replace("_", "-")
  os.makedirs(tmp_path / "elsewhere")
  monkeypatch.chdir(tmp_path / "elsewhere")  # configs/... is read from lle's repository
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
  _assert_agent_command(process._popen.args)
  assert process.wait() == 0
  _assert_agent_run(tmp_path / "runs" / sweep_id / run_id, run_id, sweep_id, spec["metric"]["name"])


class _SweepServer(http.server.ThreadingHTTPServer):
  """The W&B server as an agent sees it: the viewer, the sweep's config (its `command`), agent
  registration, and heartbeats that hand out `runs` ({run id: {parameter: value}}) one at a time."""

  def __init__(self, sweep_yaml: str, runs: dict):
    self.sweep_yaml, self.runs, self.queries = sweep_yaml, dict(runs), []
    super().__init__(("127.0.0.1", 0), _SweepHandler)


class _SweepHandler(http.server.BaseHTTPRequestHandler):

  def do_POST(self):  # noqa: N802
    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
    query = json.loads(body).get("query", "") if self.path == "/graphql" else ""
    server = self.server
    data = {}
    if "query Viewer" in query:
      data = {"viewer": {"id": "u1", "entity": "lle", "username": "lle", "email": "lle@localhost",
                         "flags": "{}", "teams": {"edges": []}}}
    elif "SweepWithRuns" in query:
      data = {"project": {"sweep": {"id": "s1", "name": "s1", "state": "RUNNING", "config": server.sweep_yaml,
                                    "runs": {"edges": []}}}}
    elif "CreateAgent" in query:
      data = {"createAgent": {"agent": {"id": "agent1"}}}
    elif "agentHeartbeat" in query:
      commands = []
      if server.runs:
        run_id = next(iter(server.runs))
        args = server.runs.pop(run_id)
        commands = [{"type": "run", "run_id": run_id, "program": "lle/main.py",
                     "args": {k: {"value": v} for k, v in args.items()}}]
      data = {"agentHeartbeat": {"agent": {"id": "agent1"}, "commands": json.dumps(commands)}}
    server.queries.append(query.split("(")[0].split("{")[0].strip())
    out = json.dumps({"data": data}).encode()
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(out)))
    self.end_headers()
    self.wfile.write(out)

  def log_message(self, *args):
    pass


@pytest.mark.parametrize("command", [["agent", "--count=1"],
                                     pytest.param(["slurm", "agent"], marks=pytest.mark.slow)], ids=" ".join)
def test_launcher_agent_runs_lles_python_whatever_path_and_folder(command, tmp_path):
  """`./launch.sh agent` from another folder, with a `python` first on PATH that cannot import lle: wandb's
  agent (`/usr/bin/env python -m lle.main ...`) must still start lle's. The sweep at tiny size, as its
  header says: `variants: {value: tiny}`. Also the per-file test's case for this sweep file."""
  spec = yaml.safe_load(open(LAUNCHER_SWEEP))
  spec["parameters"]["variants"] = {"value": "tiny"}
  run = sweep.expand(spec, count=1)[0]  # configs/neid.py:unet, seed 0, tiny
  server = _SweepServer(yaml.safe_dump(spec), {"run1": run})
  threading.Thread(target=server.serve_forever, daemon=True).start()
  foreign = tmp_path / "foreign_bin"
  foreign.mkdir()
  (foreign / "python").write_text("#!/bin/sh\necho 'foreign python: no lle here' >&2\nexit 3\n")
  (foreign / "python").chmod(0o755)
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "VIRTUAL_ENV"}
  env.update({"PATH": f"{foreign}{os.pathsep}{os.environ['PATH']}",
              "WANDB_BASE_URL": f"http://127.0.0.1:{server.server_port}", "WANDB_API_KEY": "0" * 40,
              "WANDB_MODE": "offline",  # the runs log offline; the agent still talks to the server
              "WANDB_DIR": str(tmp_path / "agent"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"),
              "LLE_RUNS_DIR": str(tmp_path / "runs")})
  if command[0] == "slurm":
    env["SLURM_JOB_ID"] = "1"  # inside an sbatch job (the agent branch needs no srun)
  try:
    out = subprocess.run([os.path.join(REPO, "launch.sh"), *command, "lle/lle/s1"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=600)
  finally:
    server.shutdown()
  log = out.stdout + out.stderr
  assert out.returncode == 0, log[-3000:]
  assert "foreign python" not in log and "About to run command: /usr/bin/env python -m lle.main" in log
  (command_line,) = [line for line in log.splitlines() if "About to run command: " in line]
  _assert_agent_command(command_line.split("About to run command: ", 1)[1].split())
  assert "W&B logging enabled" in log  # neid's tiny variant turns W&B off; the agent turns it on
  assert server.queries.count("mutation Heartbeat") >= 1 and not server.runs
  _assert_agent_run(tmp_path / "runs" / "s1" / "run1", "run1", "s1", spec["metric"]["name"])


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


def test_config_paths_resolve_against_lles_configs_and_variants_apply_first(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  args = config_lib.resolve_config_args(["main", "--config=configs/itmn.py:nodmse", "--variants=demo",
                                         "--config.seed=1"])
  assert args == ["main", f"--config={REPO}/configs/itmn.py:demo,nodmse", "--variants=demo", "--config.seed=1"]
  config = config_lib.load(args[1].split("=", 1)[1])
  assert config.data.name == "lle_demo/itmn" and config.loss.alpha == 0.0  # demo's size, nodmse's alpha
  assert config_lib.resolve_config_args(["main", "--variants", "tiny", "--config=configs/neid.py"])[3] == \
      f"--config={REPO}/configs/neid.py:tiny"
  (tmp_path / "configs").mkdir()  # a config in the working folder is the one meant
  (tmp_path / "configs" / "itmn.py").write_text(open(os.path.join(REPO, "configs", "itmn.py")).read())
  assert config_lib.resolve_config_args(["main", "--config=configs/itmn.py"]) == ["main", "--config=configs/itmn.py"]
  with pytest.raises(ValueError, match="--variants=demo needs --config"):
    config_lib.resolve_config_args(["main", "--variants=demo"])


def test_a_config_found_nowhere_is_a_one_line_error(tmp_path):
  out = subprocess.run([sys.executable, "-m", "lle.main", "--config=configs/nope.py:tiny", "--workdir=x"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert out.returncode == 2
  assert out.stderr.strip() == (f"error: config file 'configs/nope.py' is neither in {tmp_path} nor in "
                                f"lle's {REPO}")

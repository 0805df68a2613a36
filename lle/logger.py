"""Run logging: `metrics.jsonl` and PNG image grids in the workdir, and Weights & Biases.

Only process 0 writes. W&B runs offline unless an API key is configured (it never prompts), and resumes
the same run id when a run resumes from its workdir. Under a W&B sweep agent the run is the agent's
(WANDB_RUN_ID), so that the sweep's metric reaches its controller: W&B is on there even where the
config turns it off (config.wandb.enabled = False, as the `tiny` variants do).
"""
import json
import os
import pathlib
import time
import uuid

import jax
import numpy as np
from etils import epath


def _wandb_mode(config) -> str:
  """config.wandb.mode, else $WANDB_MODE, else online only when an API key is configured: never a prompt."""
  if config.wandb.mode:
    return config.wandb.mode
  if os.environ.get("WANDB_MODE"):
    return os.environ["WANDB_MODE"]
  netrc = pathlib.Path.home() / ".netrc"
  has_key = bool(os.environ.get("WANDB_API_KEY")) or (netrc.exists() and "api.wandb.ai" in netrc.read_text())
  return "online" if has_key else "offline"


def sweep_agent_workdir(environ=os.environ) -> str | None:
  """`$LLE_RUNS_DIR/<sweep id>/<run id>` when a W&B sweep agent started this process, else None."""
  sweep_id, run_id = environ.get("WANDB_SWEEP_ID"), environ.get("WANDB_RUN_ID")
  if not (sweep_id and run_id):
    return None
  return os.path.join(environ.get("LLE_RUNS_DIR", "runs"), sweep_id, run_id)


def _keep_records_up_to(path: epath.Path, step: int):
  """Drops the records of steps after `step` (logged after the checkpoint a run resumes from, and about to
  be logged again) and any line cut short by a kill, so that metrics.jsonl has each step once."""
  if not path.exists():
    return
  kept, dropped = [], 0
  for line in path.read_text().splitlines():
    try:
      keep = json.loads(line)["step"] <= step
    except (ValueError, KeyError, TypeError):
      keep = False
    if keep:
      kept.append(line)
    else:
      dropped += 1
  if dropped:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def grid_path(workdir, step: int, name: str) -> epath.Path:
  return epath.Path(workdir) / "images" / f"step_{step:08d}_{name}.png"


def write_grids(workdir, step: int, grids: dict[str, np.ndarray]) -> list[str]:
  """Saves each [H, W, 3] grid in [0, 1] as `WORKDIR/images/step_<step>_<name>.png` (8-bit); returns the
  paths. A name with a `/` (a nested held-out file) keeps it as `_`."""
  import cv2
  paths = []
  for name, grid in grids.items():
    path = grid_path(workdir, step, str(name).replace("/", "_"))
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb8 = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(path), rgb8[..., ::-1])
    paths.append(str(path))
  return paths


class RunLogger:

  def __init__(self, workdir, config, *, start_step: int = 0):
    self.workdir = epath.Path(workdir)
    self.active = jax.process_index() == 0
    self.wandb = None
    if not self.active:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    (self.workdir / "images").mkdir(exist_ok=True)
    _keep_records_up_to(self.workdir / "metrics.jsonl", start_step)
    enabled = config.wandb.enabled
    if not enabled and os.environ.get("WANDB_SWEEP_ID"):
      print("W&B sweep agent run: W&B logging enabled (the config sets wandb.enabled = False), so that the "
            "sweep's metric reaches its controller", flush=True)
      enabled = True
    if enabled:
      os.environ.setdefault("WANDB_SILENT", "true")
      import wandb
      id_file = self.workdir / "wandb_run_id"
      # A sweep agent names the run (and its controller waits for that id); else the workdir keeps one.
      run_id = (os.environ.get("WANDB_RUN_ID") or (id_file.read_text().strip() if id_file.exists() else "")
                or uuid.uuid4().hex[:12])
      id_file.write_text(run_id)
      self.wandb = wandb.init(
          project=config.wandb.project, entity=config.wandb.entity or None, name=config.wandb.name or None,
          group=config.wandb.group or None, dir=str(self.workdir), config=config.to_dict(), id=run_id,
          resume="allow", mode=_wandb_mode(config), settings=wandb.Settings(console="off"))

  def scalars(self, step: int, values: dict):
    if not self.active:
      return
    record = {"step": int(step), "time": time.time(), **{k: float(v) for k, v in values.items()}}
    with (self.workdir / "metrics.jsonl").open("a") as f:
      f.write(json.dumps(record) + "\n")
    if self.wandb is not None:
      self.wandb.log({k: float(v) for k, v in values.items()}, step=int(step))

  def images(self, step: int, grids: dict[str, np.ndarray]) -> list[str]:
    """Saves each grid (`write_grids`) and logs it to W&B; returns the PNG paths."""
    if not self.active:
      return []
    paths = write_grids(self.workdir, step, grids)
    if self.wandb is not None:
      import wandb
      self.wandb.log({f"eval/{name}": wandb.Image(grid) for name, grid in grids.items()}, step=int(step))
    return paths

  def mark_preempting(self):
    """Tells W&B that the run stops to be resumed: a sweep controller then requeues the same run id."""
    if self.wandb is not None:
      self.wandb.mark_preempting()

  def close(self):
    if self.wandb is not None:
      self.wandb.finish()
      self.wandb = None

"""Run logging: `metrics.jsonl` and PNG image grids in the workdir, and Weights & Biases.

Only process 0 writes. W&B runs offline unless an API key is configured (it never prompts), and resumes
the same run id when a run resumes from its workdir.
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


class RunLogger:

  def __init__(self, workdir, config):
    self.workdir = epath.Path(workdir)
    self.active = jax.process_index() == 0
    self.wandb = None
    if not self.active:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    (self.workdir / "images").mkdir(exist_ok=True)
    if config.wandb.enabled:
      os.environ.setdefault("WANDB_SILENT", "true")
      import wandb
      id_file = self.workdir / "wandb_run_id"
      run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
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

  def images(self, step: int, grids: dict[str, np.ndarray]):
    """Saves each [H, W, 3] grid in [0, 1] as `images/step_<step>_<name>.png` and logs it to W&B."""
    if not self.active:
      return
    import cv2
    for name, grid in grids.items():
      rgb8 = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
      cv2.imwrite(str(self.workdir / "images" / f"step_{step:08d}_{name}.png"), rgb8[..., ::-1])
    if self.wandb is not None:
      import wandb
      self.wandb.log({f"eval/{name}": wandb.Image(grid) for name, grid in grids.items()}, step=int(step))

  def close(self):
    if self.wandb is not None:
      self.wandb.finish()
      self.wandb = None

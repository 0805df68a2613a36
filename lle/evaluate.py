"""Full-size evaluation of a model and its baselines on a held-out split, and `results.json`.

`results.json` (written atomically by process 0) has a stable shape that sweeps and tables read:
  {"config": {...}, "step": N, "model": {metric: mean, ...},
   "baselines": {name: {metric: mean, ...}, ...}, "per_image": {"model"|baseline: {image: {metric: v}}},
   "dataset": {"name", "config", "version", "split", "num_images"}, "seed": S, "num_devices": D,
   "num_processes": P, "code": {"commit": sha or null, "dirty": bool or null, "version": lle version}}
"""
import functools
import json
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

import lle
from lle import color, metrics


def _decode_linear(x, data_config, reference_nits, *, absolute=False):
  """Model-space values -> linear HDR: cd/m^2 if `absolute`, else relative to `reference_nits`."""
  if data_config.target_encoding == "pq":
    nits = color.pq_decode(x)
    return nits if absolute else nits / reference_nits
  linear = color.srgb_to_linear(x)
  return linear * reference_nits if absolute else linear


def metric_fns(config) -> dict:
  """name -> jitted fn(pred, target) -> {column: [N]} for every name in config.eval.metrics.

  Any metric of `lle.metrics.METRICS` can be named. Images are in model space ([0, 1]); metrics on
  linear HDR see decoded values, relative to `config.eval.mpsnr_reference_nits` (mPSNR's exposure 0),
  except PU21 metrics, which need absolute cd/m^2.
  """
  unknown = [m for m in config.eval.metrics if m not in metrics.METRICS]
  if unknown:
    raise ValueError(f"config.eval.metrics has unknown {unknown}; known: {sorted(metrics.METRICS)}")
  fns = {}
  for name in config.eval.metrics:
    metric = metrics.METRICS[name]
    decode = functools.partial(_decode_linear, data_config=config.data,
                               reference_nits=config.eval.mpsnr_reference_nits, absolute=name.startswith("pu_"))

    def fn(pred, target, metric=metric, decode=decode):
      pred = decode(pred) if metric.hdr_pred else pred
      target = decode(target) if metric.hdr_target else target
      return metric(pred, target if metric.needs_target else None, data_range=1.0)

    fns[name] = jax.jit(fn)
  return fns


def pad_to_multiple(images, multiple: int):
  """Reflect-pads [N, H, W, C] at the bottom/right so H and W divide by `multiple`."""
  h, w = images.shape[1:3]
  ph, pw = -h % multiple, -w % multiple
  if ph == pw == 0:
    return images
  mode = "reflect" if ph < h and pw < w else "edge"
  return jnp.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


def evaluate(method, state, examples, config, *, predict=None):
  """Scores the model and every baseline on each example at full size.

  Returns ({"model": {metric: mean}, baseline: {...}}, per-image scores, {name: input|output|target grid}).
  """
  predict = predict or jax.jit(method.predict)
  fns = metric_fns(config)
  systems = {"model": lambda x: predict(state, x), **{k: jax.jit(f) for k, f in method.baselines.items()}}
  per_image = {name: {} for name in systems}
  grids = {}
  for i, ex in enumerate(examples):
    x = jnp.asarray(ex["input"][None])
    target = jnp.asarray(ex["target"][None])
    h, w = target.shape[1:3]  # outputs are cropped to the target: padding, or a larger (2x) output
    for name, fn in systems.items():
      xin = pad_to_multiple(x, method.size_multiple) if name == "model" else x
      out = fn(xin)
      if out.shape[1] < h or out.shape[2] < w:
        raise ValueError(f"{name} output {out.shape[1]}x{out.shape[2]} for {ex['name']!r} is smaller "
                         f"than its target {h}x{w}")
      out = jnp.clip(out[:, :h, :w], 0.0, 1.0)
      per_image[name][ex["name"]] = {col: float(v[0]) for f in fns.values() for col, v in f(out, target).items()}
      if name == "model" and i < config.eval.num_images_to_save:
        shown = ex["input"]
        if shown.shape != ex["target"].shape:  # e.g. a low-resolution input: show it at the target's size
          shown = np.asarray(jax.image.resize(shown, ex["target"].shape, "nearest"))
        grids[ex["name"]] = np.concatenate([shown, np.asarray(out[0]), ex["target"]], axis=1)
  means = {name: {col: float(np.mean([s[col] for s in scores.values()])) for col in next(iter(scores.values()))}
           for name, scores in per_image.items() if scores}
  return means, per_image, grids


def code_version() -> dict:
  root = epath.Path(lle.__file__).parent.parent
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip())
  except (OSError, subprocess.CalledProcessError):
    commit, dirty = None, None
  return {"commit": commit, "dirty": dirty, "version": lle.__version__}


def write_results(workdir, *, config, step, means, per_image, dataset, num_devices, num_devices_available=None):
  if jax.process_index() != 0:
    return None
  results = {
      "config": config.to_dict(),
      "step": int(step),
      "model": means["model"],
      "baselines": {k: v for k, v in means.items() if k != "model"},
      "per_image": per_image,
      "dataset": dataset,
      "seed": config.seed,
      "num_devices": num_devices,  # the devices the batch was split over (see train.data_parallel_devices)
      "num_devices_available": jax.device_count() if num_devices_available is None else num_devices_available,
      "num_processes": jax.process_count(),
      "code": code_version(),
  }
  path = epath.Path(workdir) / "results.json"
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(results, indent=2, default=str))
  tmp.replace(path)  # atomic: readers never see half a file
  return results

"""Full-size evaluation of a model and its baselines on a held-out split, and `results.json`.

`results.json` (written atomically by process 0) has a stable shape that sweeps and tables read:
  {"config": {...}, "step": N, "model": {metric: mean, ...},
   "baselines": {name: {metric: mean, ...}, ...}, "per_image": {"model"|baseline: {image: {metric: v}}},
   "dataset": {"name", "config", "version", "split", "num_images"}, "seed": S, "num_devices": D,
   "num_processes": P, "code": {"commit": sha or null, "dirty": bool or null, "version": lle version},
   "conventions": {"quantize_8bit", "quantize_rounding", "color", "ssim_window", "hdrvdp_release",
                   "psnr_pooling", "clip" [, "pooling_batch_size"],
                   "fsitm_reference"},
   "layer_forms": "cpu" | "plain" (config.layer_forms as this process resolved it: lle.nn.layers),
   "weights": "trained" | "release" (a run folder made by `lle.releases` from published weights, scored as
   imported: tables keep the two apart),
   "no_reference": {set: {"num_images", "model": {metric: mean}, "baselines": {...}, "per_image": {...}}}}
  (the last only when `config.eval.no_reference` names sets without references: LIME, DICM, NPE, MEF)
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
from lle.metrics import fidelity
from lle.nn.layers import layer_forms

# Allowed values of each scoring convention, the default first (see lle.config_lib.base).
CONVENTIONS = {"quantize_8bit": (False, True), "quantize_rounding": ("round", "floor"), "color": ("rgb", "y"),
               "ssim_window": ("gaussian", "matlab"), "hdrvdp_release": ("2.2.2", "2.2.0"),
               "psnr_pooling": ("image", "batch"), "clip": (True, False),
               "fsitm_reference": ("linear", "as_is")}
# Metrics whose mean `psnr_pooling="batch"` takes over groups of images instead of one image at a time.
POOLED_METRICS = ("psnr", "ms_ssim_dped")


def _decode_linear(x, data_config, reference_nits, *, absolute=False):
  """Model-space values -> linear HDR: cd/m^2 if `absolute`, else relative to `reference_nits`."""
  if data_config.target_encoding == "pq":
    nits = color.pq_decode(x)
    return nits if absolute else nits / reference_nits
  linear = color.srgb_to_linear(x)
  return linear * reference_nits if absolute else linear


def conventions(config) -> dict:
  """The scoring conventions of `config.eval` (see `lle.config_lib.base`), checked."""
  out = {key: config.eval.get(key, values[0]) for key, values in CONVENTIONS.items()}
  for key, value in out.items():
    if value not in CONVENTIONS[key]:
      raise ValueError(f"config.eval.{key}={value!r}; expected one of {CONVENTIONS[key]}")
  if out["quantize_8bit"] and config.data.target_encoding != "none":
    raise ValueError(f"config.eval.quantize_8bit applies to 8-bit (LDR) outputs; this model's outputs are "
                     f"{config.data.target_encoding!r}-coded HDR")
  if out["quantize_8bit"] and not out["clip"]:
    raise ValueError("config.eval.quantize_8bit saves the output as an 8-bit image, which clips it: "
                     "config.eval.clip=False contradicts it")
  if out["psnr_pooling"] == "batch":
    size = config.eval.get("pooling_batch_size", 50)
    if not isinstance(size, int) or size < 1:
      raise ValueError(f"config.eval.pooling_batch_size={size!r}; expected a positive integer")
    out["pooling_batch_size"] = size
  return out


def natural_key(name: str):
  """Sort key that orders digit runs by value: DPED's test patches 0.jpg, 1.jpg, ..., 10.jpg in the
  order its `load_test_data` reads them (by index), not as strings."""
  import re
  return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def pooling_terms(pred, target, *, metric_names, y: bool) -> dict:
  """One image's terms (pred, target [1, H, W, C]) that batch pooling combines: for psnr its MSE and
  number of values (on the configured colour space, as `psnr`), for ms_ssim_dped the per-scale means of
  its maps and their entry counts."""
  out = {}
  if "psnr" in metric_names:
    y_channel = y and pred.shape[-1] == 3
    out["mse"] = float(np.asarray(fidelity.mse(pred, target, y_channel=y_channel))[0])
    out["values"] = pred.shape[1] * pred.shape[2] * (1 if y_channel else pred.shape[-1])
  if "ms_ssim_dped" in metric_names:
    ssim, cs = fidelity.ms_ssim_dped_terms(pred, target)
    out.update(ssim=np.asarray(ssim)[0], cs=np.asarray(cs)[0],
               counts=np.asarray(fidelity.ms_ssim_dped_counts(*pred.shape[1:])))
  return out


def pool_by_batches(names, terms, metric_names, batch_size: int) -> dict:
  """DPED's scores (train_model.py): the images, in `natural_key` order of their names, cut into
  consecutive groups of `batch_size` (the remainder left out, as its int(N / batch_size) test batches);
  per group PSNR = 10 log10(1 / pooled MSE) and MS-SSIM = ssim.py's whole-batch MultiScaleSSIM; the score
  is the mean over groups. `terms`: {image: {"mse", "values", "ssim", "cs", "counts"}}."""
  order = sorted(names, key=natural_key)
  groups = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
  if not groups:
    raise ValueError(f"config.eval.psnr_pooling='batch' pools groups of config.eval.pooling_batch_size="
                     f"{batch_size} images, and the split has only {len(order)}: lower pooling_batch_size")
  out = {}
  if "psnr" in metric_names:
    psnrs = []
    for group in groups:
      values = np.asarray([terms[n]["values"] for n in group], np.float64)
      pooled = np.sum(np.asarray([terms[n]["mse"] for n in group], np.float64) * values) / np.sum(values)
      psnrs.append(10.0 * np.log10(1.0 / pooled))
    out["psnr"] = float(np.mean(psnrs))
  if "ms_ssim_dped" in metric_names:
    scores = [fidelity.ms_ssim_dped_pool(np.stack([terms[n]["ssim"] for n in group]),
                                         np.stack([terms[n]["cs"] for n in group]),
                                         np.stack([terms[n]["counts"] for n in group])) for group in groups]
    out["ms_ssim_dped"] = float(np.mean(np.asarray(scores, np.float64)))
  return out


def quantize(images, rounding: str) -> np.ndarray:
  """[0, 1] values -> the 8-bit image a paper would have saved, read back into [0, 1] as the data pipeline
  reads 8-bit files (float32 k / 255). "floor" adds 1e-4 before truncating, so that an exact 8-bit value
  k / 255 (which float32 may hold a hair below k) stays k. On the host: XLA turns the division by 255
  into a multiplication, which is not the exact quotient."""
  images = np.asarray(images, np.float32)
  codes = np.floor(images * np.float32(255.0) + np.float32(0.5 if rounding == "round" else 1e-4))
  return np.clip(codes, 0.0, 255.0) / np.float32(255.0)


def _fidelity_with_conventions(name, conv):
  """psnr / ssim / mse / ms_ssim with the configured colour space and SSIM window."""
  y = conv["color"] == "y"

  def fn(pred, target, data_range):
    y_channel = y and pred.shape[-1] == 3
    if name == "ssim":
      value = fidelity.ssim(pred, target, data_range=data_range, y_channel=y_channel,
                            downsample=conv["ssim_window"] == "matlab")
    else:
      value = getattr(fidelity, name)(pred, target, data_range=data_range, y_channel=y_channel)
    return {name: value}

  return metrics.Metric(name, fn, (name,))


def metric_fns(config) -> dict:
  """name -> jitted fn(pred, target) -> {column: [N]} for every name in config.eval.metrics.

  Any metric of `lle.metrics.METRICS` can be named; psnr, ssim, mse and ms_ssim follow the colour space
  and SSIM window of `conventions(config)`, hdrvdp2 its HDR-VDP release. Images are in model space
  ([0, 1]); metrics on linear HDR see decoded values, relative to `config.eval.mpsnr_reference_nits`
  (mPSNR's exposure 0), except PU21 metrics, which need absolute cd/m^2. FSITM's reference is decoded the same way (`fsitm_reference =
  "linear"`) or passed as it is (`"as_is"`: an 8-bit target image as its file holds it).
  """
  unknown = [m for m in config.eval.metrics if m not in metrics.METRICS]
  if unknown:
    raise ValueError(f"config.eval.metrics has unknown {unknown}; known: {sorted(metrics.METRICS)}")
  conv = conventions(config)
  fns = {}
  for name in config.eval.metrics:
    metric = metrics.METRICS[name]
    if name in ("psnr", "ssim", "mse", "ms_ssim"):
      metric = _fidelity_with_conventions(name, conv)
    elif name == "hdrvdp2":
      metric = metrics.hdrvdp2_metric(conv["hdrvdp_release"])
    decode = functools.partial(_decode_linear, data_config=config.data,
                               reference_nits=config.eval.mpsnr_reference_nits, absolute=name.startswith("pu_") or name == "hdrvdp2")

    decode_target = metric.hdr_target and not (name == "fsitm" and conv["fsitm_reference"] == "as_is")

    def fn(pred, target, metric=metric, decode=decode, decode_target=decode_target):
      pred = decode(pred) if metric.hdr_pred else pred
      target = decode(target) if decode_target else target
      return metric(pred, target if metric.needs_target else None, data_range=1.0)

    fns[name] = fn if metric.host else jax.jit(fn)
  return fns


def pad_to_multiple(images, multiple: int):
  """Reflect-pads [N, H, W, C] at the bottom/right so H and W divide by `multiple`."""
  h, w = images.shape[1:3]
  ph, pw = -h % multiple, -w % multiple
  if ph == pw == 0:
    return images
  mode = "reflect" if ph < h and pw < w else "edge"
  return jnp.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


class Evaluator:
  """Scores the model and every baseline of a method on an `lle.data.pipeline.EvalSet`, at full size.

  The split streams in same-shape batches of `config.eval.batch_size` images (default: one per device),
  the last batch of each size filled up with repeats, so the model and each baseline compile once per
  image shape and batch, and keep their compilations across evaluations. Metrics score one image at a
  time (they compile once per image shape), so the repeats cost nothing there. The model's
  batch is sharded over every device. An image larger than a window of `config.eval.tile_size` (plus the
  method's halo) runs window by window (`lle.tiling`, the same result in bounded memory); its windows
  have one shape whatever the image's size.
  """

  def __init__(self, method, config, *, mesh=None):
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from lle import tiling
    self.method, self.config = method, config
    self.mesh = mesh if mesh is not None else Mesh(np.asarray(jax.devices()), ("data",))
    batch = config.eval.get("batch_size") or self.mesh.size
    self.batch = -(-batch // self.mesh.size) * self.mesh.size  # whole batches per device
    self.sharding = NamedSharding(self.mesh, P("data"))
    self.predict = jax.jit(method.predict)
    self.baselines = {k: f if getattr(f, "host", False) else jax.jit(f) for k, f in chosen_baselines(method, config).items()}
    self.metrics = metric_fns(config)
    conv = conventions(config)
    self.quantize = functools.partial(quantize, rounding=conv["quantize_rounding"]) if conv["quantize_8bit"] else None
    self.clip = conv["clip"]
    self.pooled = [m for m in config.eval.metrics if m in POOLED_METRICS] if conv["psnr_pooling"] == "batch" else []
    self.pooling_batch_size = conv.get("pooling_batch_size")
    self.pool_on_y = conv["color"] == "y"
    # Sets without references are opened now, so that one that is not built stops a run before training.
    from lle.data import pipeline
    self.no_reference_sets = pipeline.no_reference_sets(config)
    tile = config.eval.get("tile_size")
    self.tiled = None
    if tile and method.tiling is not None:
      self.tiled = tiling.TiledPredictor(method, None, tile=tile)
      self.window = self.tiled.tile + 2 * self.tiled.halo

  def _to_devices(self, x: np.ndarray):
    if jax.process_count() == 1:
      return jax.device_put(x, self.sharding)
    rows = x.shape[0] // jax.process_count()
    start = jax.process_index() * rows
    return jax.make_array_from_process_local_data(self.sharding, x[start:start + rows])

  @staticmethod
  def _to_host(y) -> np.ndarray:
    if jax.process_count() == 1:
      return np.asarray(y)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(y, tiled=True))

  def model_outputs(self, state, inputs: np.ndarray, n: int) -> np.ndarray:
    """inputs [B, h, w, C] (B = self.batch; the first n real, the rest repeats) -> the model's outputs,
    at least s h x s w (padding is cropped later, with the rest, to the target's size)."""
    multiple = self.method.size_multiple
    h, w = inputs.shape[1:3]
    padded_h, padded_w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if self.tiled is not None and max(padded_h, padded_w) > self.window:
      outputs = [self.tiled(image, state=state) for image in inputs[:n]]
      return np.stack(outputs + outputs[-1:] * (len(inputs) - n))
    x = np.asarray(pad_to_multiple(inputs, multiple))
    return self._to_host(self.predict(state, self._to_devices(x)))

  def _outputs(self, state, examples, size):
    """Yields (system, outputs [B, h, w, C]) for the model and each baseline on one same-shape batch:
    cropped to `size` (the target's: the padding, or a larger 2x output, goes), clipped to [0, 1] (unless
    `config.eval.clip` is False) and quantised as `config.eval` says. B is `self.batch`: the last
    examples repeat."""
    n = len(examples)
    inputs = np.stack([e["input"] for e in examples + [examples[-1]] * (self.batch - n)])
    h, w = size
    for name in ["model", *self.baselines]:
      if name == "model":
        out = self.model_outputs(state, inputs, n)
      elif getattr(self.baselines[name], "host", False):  # image by image on the host: the repeats are copied
        out = self.baselines[name](inputs[:n])
        out = np.concatenate([out, np.repeat(out[-1:], len(inputs) - n, axis=0)])
      else:
        out = self.baselines[name](jnp.asarray(inputs))
      if out.shape[1] < h or out.shape[2] < w:
        raise ValueError(f"{name} output {out.shape[1]}x{out.shape[2]} for {examples[0]['name']!r} is "
                         f"smaller than its target {h}x{w}")
      out = jnp.asarray(out[:, :h, :w])
      if self.clip:
        out = jnp.clip(out, 0.0, 1.0)
      if self.quantize is not None:
        out = jnp.asarray(self.quantize(out))
      yield name, out

  def __call__(self, state, eval_set):
    """Returns ({"model": {metric: mean}, baseline: {...}}, per-image scores, {name: comparison grid}); a
    grid (`comparison_grid`) shows input | each baseline | model | target, labelled."""
    shown = set(eval_set.names[:self.config.eval.num_images_to_save])
    per_image = {name: {} for name in ["model", *self.baselines]}
    pool_terms = {name: {} for name in per_image}
    panels = {}
    for examples in eval_set.batches(self.batch):
      targets = np.stack([e["target"] for e in examples + [examples[-1]] * (self.batch - len(examples))])
      targets = jnp.asarray(targets)
      for name, out in self._outputs(state, examples, targets.shape[1:3]):
        for i, e in enumerate(examples):  # one image at a time: the repeats that fill the batch are not scored
          pair = out[i:i + 1], targets[i:i + 1]
          per_image[name][e["name"]] = {col: float(np.asarray(v)[0]) for f in self.metrics.values()
                                        for col, v in f(*pair).items()}
          if e["name"] in shown:
            panels.setdefault(e["name"], (e, {}))[1][name] = np.asarray(out[i])
          if self.pooled:
            pool_terms[name][e["name"]] = pooling_terms(*pair, metric_names=self.pooled, y=self.pool_on_y)
    means = _means(per_image)
    if self.pooled:  # psnr_pooling="batch": these means are DPED's, over groups of images
      for name, terms in pool_terms.items():
        means[name].update(pool_by_batches(list(terms), terms, self.pooled, self.pooling_batch_size))
    grids = {name: comparison_grid(e, outputs, systems=[*self.baselines, "model"])
             for name, (e, outputs) in panels.items()}
    return means, _sorted(per_image), grids

  def no_reference(self, state, sets=None) -> dict:
    """Scores of the model and baselines on the sets without references (`config.eval.no_reference`, or
    `sets`: {name: EvalSet}) with `config.eval.no_reference_metrics`, at each photo's size:
    {set: {"num_images", "model": {metric: mean}, "baselines": {...}, "per_image": {...}}}."""
    sets = self.no_reference_sets if sets is None else sets
    if not sets:
      return {}
    fns = no_reference_metric_fns(self.config)
    out = {}
    for set_name, nr_set in sets.items():
      per_image = {name: {} for name in ["model", *self.baselines]}
      for examples in nr_set.batches(self.batch):
        for name, images in self._outputs(state, examples, examples[0]["size"]):
          for i, e in enumerate(examples):  # one image at a time, as in __call__
            per_image[name][e["name"]] = {col: float(np.asarray(v)[0]) for f in fns.values()
                                          for col, v in f(images[i:i + 1]).items()}
      means = _means(per_image)
      out[set_name] = {"num_images": len(nr_set), "model": means.pop("model"), "baselines": means,
                       "per_image": _sorted(per_image)}
    return out


def _means(per_image):
  return {name: {col: float(np.mean([s[col] for s in scores.values()])) for col in next(iter(scores.values()))}
          for name, scores in per_image.items() if scores}


def _sorted(per_image):
  return {name: dict(sorted(scores.items())) for name, scores in per_image.items()}


def no_reference_metric_fns(config) -> dict:
  """name -> fn(images) -> {column: [N]} for `config.eval.no_reference_metrics` (metrics without a target)."""
  names = tuple(config.eval.get("no_reference_metrics", ("niqe",)))
  bad = [n for n in names if n not in metrics.METRICS or metrics.METRICS[n].needs_target]
  if bad:
    usable = sorted(n for n, m in metrics.METRICS.items() if not m.needs_target)
    raise ValueError(f"config.eval.no_reference_metrics has {bad}; metrics without a reference: {usable}")
  return {n: functools.partial(_call_without_target, metrics.METRICS[n]) for n in names}


def _call_without_target(metric, images):
  return metric(images, None, data_range=1.0)


def chosen_baselines(method, config) -> dict:
  """The method's baselines named by `config.eval.baselines.include` (all of them when it is empty)."""
  include = tuple(config.eval.get("baselines", {}).get("include", ()))
  unknown = [name for name in include if name not in method.baselines]
  if unknown:
    raise ValueError(f"config.eval.baselines.include names {unknown}; {config.method}'s baselines are "
                     f"{sorted(method.baselines)}")
  return {name: f for name, f in method.baselines.items() if not include or name in include}


LABEL_HEIGHT = 22  # pixels of the white strip above each panel that holds its name


def _labelled(image, label):
  import cv2
  panel = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
  if panel.shape[-1] == 1:
    panel = np.repeat(panel, 3, axis=-1)
  strip = np.full((LABEL_HEIGHT, panel.shape[1], 3), 255, np.uint8)  # OpenCV draws text on 8-bit images
  cv2.putText(strip, label, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
  return np.concatenate([strip.astype(np.float32) / 255.0, panel], axis=0)


def comparison_grid(example, outputs: dict, systems) -> np.ndarray:
  """input | each system of `systems` (baselines, then the model) | target, side by side, each under a
  strip with its name. A low-resolution input is shown at the target's size. Values as scored (model
  space: PQ code values for HDR targets)."""
  target = example["target"]
  shown = example["input"]
  if shown.shape != target.shape:
    shown = np.asarray(jax.image.resize(shown, target.shape, "nearest"))
  panels = [("input", shown), *((name, outputs[name]) for name in systems if name in outputs), ("target", target)]
  return np.concatenate([_labelled(image, label) for label, image in panels], axis=1)


class ExampleList:
  """Examples already in memory ({'input', 'target', 'name'} dicts) with the `EvalSet` interface."""

  def __init__(self, examples):
    self.examples = sorted(examples, key=lambda e: e["name"])
    self.names = [e["name"] for e in self.examples]

  def __len__(self):
    return len(self.examples)

  def batches(self, size):
    buckets = {}
    for e in self.examples:
      buckets.setdefault((e["input"].shape, e["target"].shape), []).append(e)
    for group in buckets.values():
      for start in range(0, len(group), size):
        yield group[start:start + size]


def evaluate(method, state, eval_set, config):
  """One evaluation with a fresh `Evaluator` (a training run keeps one, and its compilations).
  `eval_set`: an `EvalSet`, or a list of examples."""
  if isinstance(eval_set, (list, tuple)):
    eval_set = ExampleList(eval_set)
  return Evaluator(method, config)(state, eval_set)


def _format(value: float) -> str:
  if not np.isfinite(value):
    return str(value)
  magnitude = abs(value)
  return f"{value:.1f}" if magnitude >= 100 else f"{value:.2f}" if magnitude >= 1 else f"{value:.4f}"


def results_table(results: dict) -> str:
  """A markdown table of `results` (as `write_results` returns it): one row per system (the model, then
  each baseline), one column per reported metric, each column's best value in bold (lower is better for
  MSE, NIQE and the other columns `lle.metrics.higher_is_better` names), and a last line that says where
  the model is ahead and where a baseline is."""
  systems = {"model": results["model"], **results.get("baselines", {})}
  columns = list(results["model"])
  release = results.get("conventions", {}).get("hdrvdp_release", "2.2.2")
  best = {}
  for column in columns:
    values = [scores[column] for scores in systems.values() if column in scores and np.isfinite(scores[column])]
    if values:
      best[column] = max(values) if metrics.higher_is_better(column, hdrvdp_release=release) else min(values)
  dataset = results.get("dataset", {})
  title = f"{dataset.get('split', 'held-out')} ({dataset.get('num_images', '?')} images), step {results.get('step')}"
  lines = [f"| {title} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
  for system, scores in systems.items():
    cells = []
    for column in columns:
      value = scores.get(column, float("nan"))
      cells.append(f"**{_format(value)}**" if best.get(column) == value else _format(value))
    lines.append(f"| {system} | " + " | ".join(cells) + " |")
  ahead = [c for c in columns if best.get(c) == results["model"].get(c)]
  behind = [f"{c} ({', '.join(s for s, v in systems.items() if v.get(c) == best[c])})"
            for c in columns if c in best and c not in ahead]
  lines.append("")
  lines.append(f"best of each column in bold; the model is best on {', '.join(ahead) or 'no column'}"
               + (f"; a baseline is best on {', '.join(behind)}" if behind else ""))
  headline = headline_verdict(results, best)
  if headline:
    lines.append(headline)
  return "\n".join(lines)


def headline_verdict(results: dict, best: dict) -> str:
  """The line under the table about the paper's headline metrics (`config.eval.headline_metrics`): that
  the model leads all of them, or which it trails and, from `config.eval.headline_note`, why."""
  eval_config = results.get("config", {}).get("eval", {})
  headline = [c for c in eval_config.get("headline_metrics", ()) if c in best]
  if not headline:
    return ""
  lost = [c for c in headline if results["model"].get(c) != best[c]]
  if not lost:
    return f"headline metrics ({', '.join(headline)}): the model leads every one"
  note = eval_config.get("headline_note", "")
  return (f"headline metrics ({', '.join(headline)}): the model trails on {', '.join(lost)}"
          + (f": {note}" if note else ""))


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


def weights_origin(workdir, step: int) -> str:
  """'release' for a run folder that `lle.releases` made from published weights (its release.json) at the
  imported step 0; 'trained' for anything lle trained, a fine-tuned release included."""
  return "release" if step == 0 and (epath.Path(workdir) / "release.json").exists() else "trained"


def write_results(workdir, *, config, step, means, per_image, dataset, num_devices, num_devices_available=None,
                  no_reference=None, results_dir=None):
  """results.json of the checkpoint of run folder `workdir` at `step`, written into `results_dir`
  (default: the run folder)."""
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
      "conventions": conventions(config),
      "layer_forms": layer_forms(config),
      "weights": weights_origin(workdir, step),
  }
  if no_reference:
    results["no_reference"] = no_reference
  out = epath.Path(results_dir or workdir)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "results.json"
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(results, indent=2, default=str))
  tmp.replace(path)  # atomic: readers never see half a file
  return results

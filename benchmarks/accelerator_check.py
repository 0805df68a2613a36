"""The one speed check for a machine with an accelerator: one Markdown table (also written as JSON).

  LLE_EXTRAS=bench,cuda ./launch.sh python benchmarks/accelerator_check.py --out=accelerator_check.json
  ./launch.sh python benchmarks/accelerator_check.py --smoke    # on the CPU at reduced sizes (a test runs it)

Rows, in the order they run (the most telling first, so that what a time budget cuts is the least):
  1. lle's train step of each method at its config's size and batch (the paper's, or the official code's
     where the config follows it), float32 with TF32 off, with the "plain" layer forms (XLA's own ops) and
     with the "cpu" forms (`config.layer_forms`, lle/nn/layers.py);
  2. the same step in PyTorch eager (benchmarks/torch_ports/, TF32 off);
  3. lle with `config.dtype=bfloat16` (plain forms);
  4. the input pipeline of each method's config, on synthetic files in its data set's layout (built with
     the real builders; the config's own recipe, cache and worker count as resolved for this machine);
  5. TF32 on: lle (plain and cpu forms) and PyTorch eager;
  6. torch.compile, TF32 off and on;
  7. lle's step sharded over all local devices, when there are several.
TF32: lle sets `jax_default_matmul_precision` to "highest" (off) or "tensorfloat32" (on); PyTorch sets
`torch.backends.cuda.matmul.allow_tf32` and `torch.backends.cudnn.allow_tf32`. lle's trainer sets no
precision, so on an NVIDIA GPU it trains with XLA's default for float32, which uses TF32. On a CPU
backend there is no TF32: those rows say so instead of repeating the float32 ones.

Each row has its own time limit and the whole run a budget (`--budget_s`, default 450 s: the run fits in 8
minutes of device time with the start-up); a row that runs out of time, fails, or is left when the budget
is spent is still a row of the table, saying which and why. Rows run in worker processes, one per group
of rows, which report each row as it ends; a worker that crashes or is stopped at a row's limit loses
that row only (the rest of its group starts again in a new worker). Memory: lle's is the device memory
XLA assigned to one step (arguments, outputs, temporaries: `memory.compiled_memory_mb`), PyTorch's its
allocator's peak over the row (`torch.cuda.max_memory_allocated`; host RSS on a CPU). Compile s: lle's
lowering and compilation, PyTorch's first step. Images/s: the batch over the mean (lle) or median
(PyTorch) time of `--steps` steps after the first.

Installs: the `cuda` extra is jax[cuda12] (CUDA 12 wheels, NVIDIA driver >= 525); the `bench` extra is
torch==2.13.0, whose Linux x86-64 wheel on PyPI is a CUDA 13.0 build (it pulls cuda-toolkit 13.0.3,
nvidia-cudnn-cu13 and nvidia-nccl-cu13 wheels, beside jax's CUDA 12 ones, and needs a driver >= 580), so
on a GPU machine that installs from PyPI the torch rows run on the GPU. Where pip finds a CPU-only build
first (a local `+cpu` wheel) or the driver is too old for it, the machine line shows torch's CUDA
version and the torch rows say that torch sees no CUDA device instead of timing it on the CPU. VGG feature losses (tmgan, iqe) use
random He-scaled weights (the same arithmetic; no ImageNet weights are needed). The PyTorch ports are
checked equal to lle (outputs, losses, gradients) by benchmarks/bench_vs_torch.py, not here.
"""
import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time

from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("itmn", "gladnet", "neid", "tmgan", "iqe")
MARK = "@@accelerator_check "  # prefixes the workers' report lines (libraries print to stdout too)

FLAGS = flags.FLAGS
flags.DEFINE_bool("smoke", False, "Tiny configs, 2 steps, small synthetic files: checks that every part runs "
                  "(on a CPU in a few minutes), measures nothing worth reading.")
flags.DEFINE_string("out", None, "Also write the table (and the machine's description) to this JSON file.")
flags.DEFINE_integer("budget_s", None, "Seconds for all rows together (default 450; --smoke 1200: a smoke run "
                     "checks that every part runs, on a shared CPU whose speed varies, and stops only what hangs).")
flags.DEFINE_integer("steps", None, "Timed train steps per row after the first (default 10; --smoke 2).")
flags.DEFINE_list("methods", list(METHODS), "Methods to measure.")
PARTS = {"train": "train step", "pipeline": "input pipeline", "sharded": "sharded train step"}
flags.DEFINE_list("parts", list(PARTS), f"Parts of the table to measure, of {list(PARTS)}.")
flags.DEFINE_string("worker", None, "Internal: run these rows (JSON) and report each one, or 'probe'.")

# Each row's time limit in seconds (start-up of its worker included for the first row of a worker).
ROW_LIMIT_S = {"lle": 150, "torch eager": 90, "torch.compile": 240, "pipeline": 120}
SMOKE_ROW_LIMIT_S = 300
COLUMNS = ("part", "method", "system", "forms", "dtype", "TF32", "devices", "batch", "size", "images/s", "step ms",
           "compile s", "memory MB", "status")


def _spec(method, smoke):
  return f"configs/{method}.py" + (":tiny" if smoke else "")


def plan(methods, smoke, local_devices) -> list[tuple[str, list[dict]]]:
  """(worker kind, rows) in the order they run: see the module docstring. `smoke` keeps what checks that
  every part runs: lle's plain float32 step and the input pipeline of every method, every other kind of
  row for one method."""
  def row(part, method, system, forms="-", dtype="float32", tf32="off"):
    return dict(part=part, method=method, config=_spec(method, smoke), system=system, forms=forms, dtype=dtype,
                TF32=tf32)
  train = "train step"
  rounds = [
      ("lle", [row(train, m, "lle", forms) for m in methods for forms in ("plain", "cpu")]),
      ("torch", [row(train, m, "torch eager") for m in methods]),
      ("lle", [row(train, m, "lle", "plain", "bfloat16") for m in methods]),
      ("pipeline", [row("input pipeline", m, "pipeline", dtype="-", tf32="-") for m in methods]),
      ("lle", [row(train, m, "lle", forms, tf32="on") for m in methods for forms in ("plain", "cpu")]),
      ("torch", [row(train, m, "torch eager", tf32="on") for m in methods]),
      ("torch", [row(train, m, "torch.compile", tf32=tf32) for tf32 in ("off", "on") for m in methods]),
  ]
  sharded = [row("sharded train step", m, "lle", "plain") for m in methods]
  if local_devices > 1:
    rounds.append(("lle", sharded))
  else:
    rounds.append(("none", [dict(r, status="skipped: one local device") for r in sharded]))
  if smoke:
    every_method = lambda r: r["part"] == "input pipeline" or (  # noqa: E731
        r["part"] == "train step" and r["system"] == "lle" and (r["forms"], r["dtype"], r["TF32"]) == ("plain", "float32", "off"))
    rounds = [(kind, [r for r in rows if every_method(r) or r["method"] == methods[0]]) for kind, rows in rounds]
  return rounds


# --- workers ------------------------------------------------------------------------------------------

def _report(**kv):
  print(MARK + json.dumps(kv), flush=True)


def probe(weights_dir):
  """The machine and the frameworks; random VGG weights for the feature losses in `weights_dir` (None:
  none, the tiny configs have no feature losses)."""
  import jax
  import jaxlib

  import bench_train
  if weights_dir:
    bench_train.use_random_vgg(weights_dir)
  info = {"platform": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
          "local_devices": jax.local_device_count(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "cpus": len(os.sched_getaffinity(0)), "torch": None, "torch_cuda": None, "torch_sees_cuda": False}
  if importlib.util.find_spec("torch") is not None:
    import torch
    info.update(torch=torch.__version__, torch_cuda=torch.version.cuda, torch_sees_cuda=torch.cuda.is_available())
  return info


def run_lle(row, steps):
  import jax

  import bench_train
  from lle import config_lib
  config = config_lib.load(os.path.join(REPO, row["config"]))
  config.layer_forms, config.dtype = row["forms"], row["dtype"]
  jax.config.update("jax_default_matmul_precision", "tensorfloat32" if row["TF32"] == "on" else "highest")
  devices = None if row["part"].startswith("sharded") else jax.local_devices()[:1]
  m = bench_train.measure(config, steps, devices)
  memory, kind = m["step_mb"], "XLA step"
  if memory is None:
    from memory import peak_memory_mb
    memory, kind = peak_memory_mb()
  return {"devices": f"{m['devices']}x {jax.devices()[0].device_kind}", "batch": config.batch_size,
          "size": m["size"], "images/s": m["images_per_s"], "step ms": m["step_ms"], "compile s": m["compile_s"],
          "memory MB": memory, "memory": kind}


def run_torch(row, steps):
  import bench_vs_torch  # imports torch
  system = {"torch eager": "torch_eager", "torch.compile": "torch_compile"}[row["system"]]
  r = bench_vs_torch.run_row(row["method"], "tiny" if row["config"].endswith(":tiny") else "paper", system, steps,
                             tf32=row["TF32"] == "on")
  import torch
  device = torch.cuda.get_device_name() if r["device"] == "cuda" else "cpu"
  return {"devices": f"1x {device}", "batch": r["batch"], "size": r["input"], "images/s": r["images_per_s"],
          "step ms": r["step_ms"], "compile s": r["compile_s"], "memory MB": r["peak_mb"], "memory": r["memory"]}


def run_pipeline(row, smoke, platform, built):
  """Images/s of the method's training batches from synthetic files in its data set's layout."""
  from lle import config_lib
  from lle.data import pipeline

  import bench_pipeline
  config = config_lib.load(os.path.join(REPO, f"configs/{row['method']}.py"))  # the paper's data set
  if smoke:  # small crops of small files, a few examples per batch
    config.data.crop_size, config.batch_size = 32, 2
  name = config.data.name
  if name not in built:
    built[name] = synthetic_data_set(name, smoke)
  config.data.data_dir = built[name]
  config.data.worker_count = pipeline.worker_count(config.data, platform=platform)
  m = bench_pipeline.measure(config, batches=2 if smoke else 10, warmup=0 if smoke else 2)
  return {"batch": m["batch"], "size": m["input"], "images/s": m["images/s"],
          "status": f"ok ({name}, synthetic files, {m['workers']} worker processes, cache {m['cache MB']} MB)"}


def worker(rows, steps, smoke, platform):
  sys.path.insert(0, REPO)  # tests.data.fixtures writes the synthetic files
  built = {}
  for i, row in enumerate(rows):
    _report(start=i)
    try:
      if row["system"] == "lle":
        out = run_lle(row, steps)
      elif row["system"] == "pipeline":
        out = run_pipeline(row, smoke, platform, built)
      else:
        out = run_torch(row, steps)
      out.setdefault("status", "ok")
    except Exception as e:  # noqa: BLE001 -- one row's failure is that row's status, not the table's end
      out = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
    _report(row=i, result=out)


# --- synthetic data sets --------------------------------------------------------------------------------

def _photo(rng, h, w, dtype="uint8"):
  """A smooth random image with fine noise (compresses and decodes like a photo, has edges to find)."""
  import cv2
  import numpy as np
  low = rng.random((max(h // 32, 2), max(w // 32, 2), 3)).astype(np.float32)
  image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 0.03, (h, w, 3))
  image = np.clip(image, 0, 1)
  if dtype == "hdr":
    return (np.exp(image * 7.0 - 4.0) * 0.01).astype(np.float32)  # a 1000:1 linear range
  return (image * 255).round().astype(np.uint8)


def synthetic_data_set(name, smoke) -> str:
  """Writes synthetic files in the layout of data set `name` (the sizes its real files have; tiny with
  `smoke`), builds it with lle's builder, and returns the TFDS data dir that holds it."""
  import numpy as np

  from lle.data import build
  from lle.data.mit_fivek import splits
  from tests.data import fixtures
  root = tempfile.mkdtemp(prefix="lle-synthetic-")
  manual = os.path.join(root, "manual")
  rng = np.random.default_rng(0)
  count = 4 if smoke else 16
  scale = lambda h, w: (48, 64) if smoke else (h, w)  # noqa: E731
  if name == "lol/v1":  # LOLdataset/{our485,eval15}/{low,high}/N.png, 600x400
    for folder, n in (("our485", count), ("eval15", 1)):
      for i in range(n):
        for kind in ("low", "high"):
          fixtures.write(os.path.join(manual, "LOLdataset", folder, kind, f"{i + 1}.png"), _photo(rng, *scale(400, 600)))
  elif name.startswith("hdr/"):  # Radiance .hdr scenes in train/ and test/ (the builder resizes them to 512^2)
    for split, n in (("train", count), ("test", 1)):
      for i in range(n):
        fixtures.write(os.path.join(manual, split, f"scene{i}.hdr"), _photo(rng, *scale(1024, 1536), dtype="hdr"))
  elif name.startswith("mit_fivek/"):  # fivek/input/aNNNN-*.png and fivek/ExpertC/aNNNN.tif
    ids = splits.montulet_split()
    for image_id in ids["train"][:count] + ids["test"][:1]:
      for folder, suffix in (("input", "-synthetic.png"), ("ExpertC", ".tif")):
        fixtures.write(os.path.join(manual, "fivek", folder, image_id + suffix), _photo(rng, *scale(1000, 1500)))
  elif name.startswith("dped/"):  # dped/<phone>/{training_data,test_data/patches}/{<phone>,canon}/N.jpg, 100x100
    phone = name.split("/")[1]
    for folder, n in (("training_data", 8 * count), ("test_data/patches", 2)):
      for i in range(n):
        for kind in (phone, "canon"):
          fixtures.write(os.path.join(manual, "dped", phone, folder, kind, f"{i}.jpg"), _photo(rng, 100, 100))
    fixtures.write(os.path.join(manual, "dped", phone, "test_data", "full_size_test_images", "0.jpg"),
                   _photo(rng, *scale(1500, 2000)))
  else:
    raise ValueError(f"no synthetic layout for data set {name!r}")
  data_dir = os.path.join(root, "tfds")
  build.build(name, manual, data_dir=data_dir, allow_subset=True)
  return data_dir


# --- the parent: runs the workers within the budget and prints the table -------------------------------

class Worker:
  """A worker process over `rows`, whose report lines are read with a time limit."""

  def __init__(self, rows, env, extra_args):
    self.stderr = tempfile.TemporaryFile(mode="w+")
    task = "probe" if rows == "probe" else json.dumps(rows)
    args = [sys.executable, os.path.abspath(__file__), f"--worker={task}", *extra_args]
    self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self.stderr,
                                 start_new_session=True)
    self.selector = selectors.DefaultSelector()
    self.selector.register(self.proc.stdout, selectors.EVENT_READ)
    self.buffer = b""

  def next_report(self, deadline):
    """The next report, None when the worker ended without one, or 'timeout' at `deadline`."""
    while True:
      if b"\n" in self.buffer:
        line, self.buffer = self.buffer.split(b"\n", 1)
        text = line.decode(errors="replace")
        if text.startswith(MARK):
          return json.loads(text[len(MARK):])
        continue
      left = deadline - time.monotonic()
      if left <= 0:
        return "timeout"
      if self.selector.select(timeout=min(left, 5.0)):
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
          return None
        self.buffer += chunk

  def stop(self):
    if self.proc.poll() is None:
      os.killpg(self.proc.pid, signal.SIGKILL)
    self.proc.wait()

  def error_tail(self) -> str:
    self.stderr.seek(0)
    lines = [x for x in self.stderr.read().splitlines() if x.strip()]
    return lines[-1][:200] if lines else f"exit code {self.proc.returncode}"


def run_group(kind, rows, *, limit_s, end, env, extra_args):
  """Runs `rows` in workers until each has a result or the budget ends; returns the finished rows."""
  done, pending = [], list(rows)
  while pending:
    if time.monotonic() >= end:
      done += [dict(r, status="skipped: the time budget was spent") for r in pending]
      break
    w = Worker(pending, env, extra_args)
    started = time.monotonic()
    current = 0
    while current < len(pending):
      row_limit = limit_s(pending[current])
      report = w.next_report(min(started + row_limit, end))
      if report == "timeout":
        waited = time.monotonic() - started
        why = "the time budget was spent" if time.monotonic() >= end else f"over its {row_limit} s limit"
        done.append(dict(pending[current], status=f"stopped after {waited:.0f} s: {why}"))
        current += 1
        break
      if report is None:
        w.proc.wait()
        done.append(dict(pending[current], status=f"failed: worker ended: {w.error_tail()}"))
        current += 1
        break
      if "start" in report:
        if report["start"] > 0:
          started = time.monotonic()  # the first row's limit includes the worker's start-up
        continue
      done.append({**pending[current], **report["result"]})
      print(f"{len(done)}/{len(rows)} {kind}: {_brief(done[-1])}", file=sys.stderr, flush=True)
      current += 1
    w.stop()
    pending = pending[current:]
  return done


def _brief(row) -> str:
  rate = row.get("images/s")
  return (f"{row['method']} {row['system']} {row['forms']} {row['dtype']} TF32 {row['TF32']}: "
          + (f"{rate:.2f} images/s" if rate is not None else row["status"]))


def _cell(row, key) -> str:
  value = row.get(key)
  if value is None:
    return "-"
  if key == "memory MB":
    return f"{value:,.{0 if value >= 10 else 1}f} ({row['memory']})"
  if isinstance(value, float):
    return f"{value:.1f}" if value >= 10 or key != "images/s" else f"{value:.2f}"
  return str(value)


def table(rows) -> str:
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  lines += ["| " + " | ".join(_cell(r, k) for k in COLUMNS) + " |" for r in rows]
  return "\n".join(lines)


def main(argv):
  del argv
  smoke = FLAGS.smoke
  steps = FLAGS.steps or (2 if smoke else 10)
  if FLAGS.worker is not None:
    if FLAGS.worker == "probe":
      _report(probe=probe(None if smoke else os.environ["LLE_WEIGHTS_DIR"]))
    else:
      worker(json.loads(FLAGS.worker), steps, smoke, os.environ.get("LLE_CHECK_PLATFORM", "cpu"))
    return
  for name, given, known in (("methods", FLAGS.methods, METHODS), ("parts", FLAGS.parts, tuple(PARTS))):
    if not given or set(given) - set(known):
      raise app.UsageError(f"--{name}={','.join(given)}: expected some of {','.join(known)}")
  budget = FLAGS.budget_s or (1200 if smoke else 450)
  start = time.monotonic()
  end = start + budget
  env = dict(os.environ, LLE_WEIGHTS_DIR=tempfile.mkdtemp(prefix="lle-random-vgg-"), PYTHONUNBUFFERED="1")
  if smoke:  # tiny steps: XLA's optimisation passes would take most of their time
    env.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
  extra = ["--smoke"] if smoke else []
  extra += [f"--steps={steps}"]
  probe_worker = Worker("probe", env, extra)
  info = probe_worker.next_report(time.monotonic() + 120)
  probe_worker.stop()
  if not isinstance(info, dict):
    raise RuntimeError(f"the probe of the machine gave no answer: {probe_worker.error_tail()}")
  info = info["probe"]
  print(f"machine: {info['local_devices']}x {info['device_kind']} ({info['platform']}), {info['cpus']} CPUs; "
        f"jax {info['jax']}, jaxlib {info['jaxlib']}; torch {info['torch']} (CUDA {info['torch_cuda']}, "
        f"sees a CUDA device: {info['torch_sees_cuda']})", file=sys.stderr, flush=True)
  env["LLE_CHECK_PLATFORM"] = info["platform"]
  pipeline_env = dict(env, JAX_PLATFORMS="cpu")  # the pipeline's process leaves the accelerator to the others
  parts = {PARTS[p] for p in FLAGS.parts}
  rounds = [(kind, [r for r in group if r["part"] in parts])
            for kind, group in plan(FLAGS.methods, smoke, info["local_devices"])]
  if smoke:  # one worker for lle's rows and one for torch's: start-ups would be most of a smoke run's time
    rounds = [(kind, [r for k, group in rounds if k in kinds for r in group])
              for kind, kinds in (("lle", ("lle", "pipeline")), ("torch", ("torch",)), ("none", ("none",)))]
  rows = []
  for kind, group in rounds:
    group = [_precheck(r, info) for r in group]
    todo = [r for r in group if "status" not in r]
    rows += [r for r in group if "status" in r]
    if not todo:
      continue
    limit = (lambda r: SMOKE_ROW_LIMIT_S) if smoke else (lambda r: ROW_LIMIT_S[r["system"]])
    rows += run_group(kind, todo, limit_s=limit, end=end, env=pipeline_env if kind == "pipeline" else env,
                      extra_args=extra)
  planned = [(r["part"], r["method"], r["system"], r["forms"], r["dtype"], r["TF32"]) for _, g in rounds for r in g]
  part_order = list(PARTS.values())
  rows.sort(key=lambda r: (part_order.index(r["part"]), METHODS.index(r["method"]),
                           planned.index((r["part"], r["method"], r["system"], r["forms"], r["dtype"], r["TF32"]))))
  text = table(rows)
  sizes = "each config's size and batch (the paper's, or its official code's)"
  settings = (f"{'smoke run (tiny configs: the numbers mean nothing)' if smoke else sizes}; {steps} timed "
              f"steps per row; budget {budget} s, used {time.monotonic() - start:.0f} s. TF32 off: lle "
              f"jax_default_matmul_precision='highest', torch allow_tf32=False (matmul and cuDNN); on: "
              f"'tensorfloat32', allow_tf32=True. VGG losses: random weights.")
  print(f"\nmachine: {info['local_devices']}x {info['device_kind']} ({info['platform']}); jax {info['jax']}; "
        f"torch {info['torch']} (CUDA {info['torch_cuda']})\n{settings}\n\n{text}", flush=True)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump({"machine": info, "settings": settings, "rows": rows, "table": text}, f, indent=1)


def _precheck(row, info) -> dict:
  """The row, with a status already where it cannot or need not run here."""
  if "status" in row:
    return row
  if row["TF32"] == "on" and info["platform"] == "cpu":
    return dict(row, status="not measured: the cpu backend has no TF32")
  if row["system"].startswith("torch"):
    if info["torch"] is None:
      return dict(row, status="torch not installed (LLE_EXTRAS=bench)")
    if info["platform"] != "cpu" and not info["torch_sees_cuda"]:
      return dict(row, status=f"not measured: torch {info['torch']} sees no CUDA device (built for CUDA "
                              f"{info['torch_cuda']})")
  return row


if __name__ == "__main__":
  app.run(main)

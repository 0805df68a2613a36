"""lle's jitted train step against a PyTorch re-implementation of the same method, side by side.

  pip install -e '.[bench]'     # torch: a benchmark-only extra, never a dependency of lle
  python benchmarks/bench_vs_torch.py [--methods=gladnet] [--variants=demo,paper] [--steps=10]

For each method and size: the PyTorch network (same layers, widths, padding, initial weights copied from
lle's), loss and optimiser; its parameter count is asserted equal to lle's, and its output, loss and
gradients are checked equal to lle's on a small input before anything is timed. Then one train step is
timed in each framework: lle (jax.jit), torch eager, torch eager with channels_last, and torch.compile.
Each row runs in its own process so that its peak memory is its own (host RSS on CPU, the allocator's peak
on a GPU); `compile s` is the first step (tracing and compiling), `step ms` the median of the others.
Precision: full float32 on both sides (JAX matmuls at "highest" precision and torch without TF32 on a
GPU), so that the numbers compare the same arithmetic. Prints a Markdown table with lle / torch ratios.

The PyTorch versions live in benchmarks/torch_ports/ (one module per method; see its __init__): all five
methods.
"""
import json
import statistics
import subprocess
import sys
import time

from absl import app, flags

from memory import peak_memory_mb  # benchmarks/memory.py
from torch_ports import common

FLAGS = flags.FLAGS


def define_flags():
  """This script's flags, defined when it runs (not when another benchmark imports its functions)."""
  flags.DEFINE_list("methods", ["itmn", "gladnet", "neid", "tmgan", "iqe"], "Methods to compare.")
  flags.DEFINE_list("variants", ["demo", "paper"], "Config variants ('paper' = the config's default).")
  flags.DEFINE_list("systems", ["lle", "torch_eager", "torch_channels_last", "torch_compile"], "What to time.")
  flags.DEFINE_integer("steps", 10, "Timed steps after the first.")
  flags.DEFINE_integer("batch", None, "Override the config's batch size (e.g. paper sizes on a small CPU).")
  flags.DEFINE_enum("vgg_weights", "installed", ["installed", "random"],
                    "VGG-19 for tmgan's and iqe's feature losses: 'installed' (converted with `python -m "
                    "lle.weights`, in $LLE_WEIGHTS_DIR) or 'random' (He-scaled random weights written to a "
                    "temporary folder: the same arithmetic, for timing only; the table says so).")
  flags.DEFINE_integer("repeats", 1, "Rounds: every system's row runs once per round, rounds one after another, "
                       "so that each round's rows run minutes apart at most; the table gives medians over rounds "
                       "and the median of the per-round lle / this ratios (a busy or throttled machine moves "
                       "single runs by 20-30%).")
  flags.DEFINE_string("row", None, "Internal: run one row (method|variant|system) and print it as JSON.")


def _port(method):
  import importlib
  return importlib.import_module(f"torch_ports.{method}")


def _config(method, variant, batch=None):
  sys.path.insert(0, ".")
  from lle import config_lib
  config = config_lib.load(f"configs/{method}.py" + ("" if variant == "paper" else f":{variant}"))
  if batch:
    config.batch_size = batch
  return config


def write_random_vgg(folder):
  """Random He-scaled VGG-19 weights under the ids the tmgan and iqe configs read, in lle's format."""
  import numpy as np
  from lle import weights
  rng = np.random.default_rng(0)
  convs = {name: ((rng.standard_normal(k) * np.sqrt(2.0 / (9 * k[2]))).astype(np.float32),
                  (rng.standard_normal(b) * 0.1).astype(np.float32))
           for name, (k, b) in weights.expected_shapes(19).items()}
  for name, source in (("vgg19_keras", "keras"), ("vgg19_matconvnet", "matconvnet")):
    weights.save(convs, arch="vgg19", source=source, preprocess=weights.PREPROCESS[source], name=name,
                 out_dir=folder, origin={"note": "random weights written by benchmarks/bench_vs_torch.py"})


def check_equal(method, variant="tiny"):
  """Parameter counts, then the port's own checks (outputs, losses, gradients) on a small input."""
  import jax
  from lle import methods
  config = _config(method, variant)
  lle_method = methods.get(config)
  state = jax.jit(lle_method.init)(jax.random.key(0))
  port = _port(method)
  module = port.build(config)
  # trained networks only: frozen feature extractors (tmgan's state['vgg']) are plain arrays, not NetStates
  lle_count = sum(common.parameter_count(v.params) for v in state.values() if hasattr(v, "params"))
  torch_count = sum(p.numel() for p in module.parameters())
  assert lle_count == torch_count, f"{method}: lle has {lle_count:,} parameters, torch {torch_count:,}"
  port.load_from_lle(module, state)
  port.check_equal(config, lle_method, state, module)
  return lle_count


def run_row(method, variant, system, steps, *, batch=None, tf32=False):
  """One system's train step of `method`: images/s, step ms (median), compile s (the first step) and peak
  memory. `tf32`: torch's `allow_tf32` for matmuls and cuDNN (lle here always runs at "highest")."""
  import numpy as np
  config = _config(method, variant, batch)
  port = _port(method)
  data = port.batch(config, np.random.default_rng(0))
  times = []
  if system == "lle":
    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    from lle import methods
    lle_method = methods.get(config)
    state = jax.jit(lle_method.init)(jax.random.key(0))
    step = jax.jit(lle_method.train_step, donate_argnums=0)
    batch = {k: jax.device_put(v) for k, v in data.items()}
    for i in range(steps + 1):
      t0 = time.perf_counter()
      state, metrics = step(state, batch, jax.random.key(i))
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
    device = jax.devices()[0].platform
    memory, kind = peak_memory_mb()
  else:
    import torch
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
      torch.cuda.reset_peak_memory_stats()  # this row's own peak when several run in one process
    fmt = torch.channels_last if system == "torch_channels_last" else torch.contiguous_format
    module = port.build(config).to(device=device, memory_format=fmt)
    step = port.make_step(config, module, use_compile=system == "torch_compile")
    batch = {k: common.to_nchw(v).to(device).contiguous(memory_format=fmt) for k, v in data.items()}
    for _ in range(steps + 1):
      t0 = time.perf_counter()
      loss = step(batch)
      float(loss)  # waits for the step
      times.append(time.perf_counter() - t0)
    if device == "cuda":
      memory, kind = torch.cuda.max_memory_allocated() / 2**20, "device"
    else:
      from memory import host_peak_rss_mb
      memory, kind = host_peak_rss_mb(), "host RSS"
  step_s = statistics.median(times[1:])
  shape = data["input"].shape
  return {"method": method, "variant": variant, "system": system, "batch": config.batch_size,
          "input": f"{shape[1]}x{shape[2]}", "images_per_s": config.batch_size / step_s, "step_ms": step_s * 1e3,
          "compile_s": times[0], "peak_mb": memory, "memory": kind, "device": device}


def print_table(rows):
  """One line per (method, variant, system): medians over rounds (min-max of images/s where there are
  several) and the median of the per-round lle / this ratios."""
  print("\n| method | size | system | batch | input | images/s | step ms | compile s | peak MB | lle / this |")
  print("|---|---|---|---|---|---:|---:|---:|---:|---:|")
  keys = list(dict.fromkeys((r["method"], r["variant"], r["system"]) for r in rows))
  for key in keys:
    runs = [r for r in rows if (r["method"], r["variant"], r["system"]) == key]
    lle = {r["round"]: r for r in rows if (r["method"], r["variant"], r["system"]) == (*key[:2], "lle")}
    paired = [lle[r["round"]]["images_per_s"] / r["images_per_s"] for r in runs if r["round"] in lle]
    ratio = f"{statistics.median(paired):.2f}" if paired else "-"
    rate = statistics.median(r["images_per_s"] for r in runs)
    rates = [r["images_per_s"] for r in runs]
    digits = 1 if rate >= 10 else 2  # paper sizes on a CPU run at a few images/s
    spread = f" ({min(rates):.{digits}f}-{max(rates):.{digits}f})" if len(runs) > 1 else ""
    median = lambda k: statistics.median(r[k] for r in runs)
    r = runs[0]
    print(f"| {r['method']} | {r['variant']} | {r['system']} | {r['batch']} | {r['input']} | {rate:.{digits}f}{spread} | "
          f"{median('step_ms'):.1f} | {median('compile_s'):.1f} | {median('peak_mb'):.0f} ({r['memory']}) | {ratio} |")


def main(argv):
  del argv
  if FLAGS.row:
    method, variant, system = FLAGS.row.split("|")
    print(json.dumps(run_row(method, variant, system, FLAGS.steps, batch=FLAGS.batch)), flush=True)
    return
  rows = []
  if FLAGS.vgg_weights == "random":
    import os
    import tempfile
    os.environ["LLE_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="random_vgg_")
    write_random_vgg(os.environ["LLE_WEIGHTS_DIR"])
  for method in FLAGS.methods:
    count = check_equal(method)
    print(f"{method}: {count:,} parameters in both; output, loss and gradients equal on a small input",
          flush=True)
    for variant in FLAGS.variants:
      for round_ in range(FLAGS.repeats):
        for system in FLAGS.systems:
          args = [sys.executable, __file__, f"--row={method}|{variant}|{system}", f"--steps={FLAGS.steps}"]
          if FLAGS.batch:
            args.append(f"--batch={FLAGS.batch}")
          out = subprocess.run(args, capture_output=True, text=True)
          if out.returncode:
            print(f"{method} {variant} {system} failed:\n{out.stderr[-2000:]}", flush=True)
            continue
          rows.append(dict(json.loads(out.stdout.strip().splitlines()[-1]), round=round_))
          print(json.dumps(rows[-1]), flush=True)
  print_table(rows)
  vgg = "random VGG-19 weights (timing only)" if FLAGS.vgg_weights == "random" else "installed VGG-19 weights"
  print(f"\ndevice: {rows[0]['device'] if rows else '-'}; float32 on both sides; {vgg} for feature losses")


if __name__ == "__main__":
  define_flags()
  app.run(main)

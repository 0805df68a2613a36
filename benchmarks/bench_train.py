"""Training-step benchmark: images/s, step ms, compile s and peak memory for a method's train step.

  python benchmarks/bench_train.py                       # iTMN at the paper's size and at the demo size
  python benchmarks/bench_train.py --configs=configs/itmn.py:demo --steps=20
  python benchmarks/bench_train.py --configs=configs/gladnet.py,configs/neid.py
  python benchmarks/bench_train.py --configs=configs/tmgan.py --random_vgg   # no ImageNet weights here
  python benchmarks/bench_train.py --configs=configs/iqe.py:paper,configs/iqe.py --steps=2 \
      --random_vgg   # IQE / DPED at batch 50, 100x100

Runs the trainer's own jitted, sharded step on the devices the trainer would use (those the global batch
divides over), on synthetic batches of the shapes the method's data recipe gives (NEID: input at
1/`input_scale` of the target, plus the full-size `input_hr`; the input pipeline is measured
separately), and prints a Markdown table. Peak memory is the devices' peak
bytes in use where the backend reports it (GPU/TPU) and the process's peak RSS on CPU.
"""
import sys
import time

from absl import app, flags

from memory import compiled_memory_mb, peak_memory_mb  # benchmarks/memory.py

FLAGS = flags.FLAGS


def define_flags():
  """This script's flags, defined when it runs (not when another benchmark imports its functions)."""
  flags.DEFINE_list("configs", ["configs/itmn.py:demo", "configs/itmn.py"], "Config specs to time.")
  flags.DEFINE_integer("steps", 10, "Timed steps after the compiling one.")
  flags.DEFINE_list("override", [], "key=value config overrides applied to every config.")
  flags.DEFINE_bool("random_vgg", False, "Time VGG feature losses with random weights written to a temporary "
                    "$LLE_WEIGHTS_DIR (timing does not depend on the values), for machines without converted "
                    "ImageNet weights. Marked in the table's config column.")
  flags.DEFINE_bool("noheader", False, "Print only the rows (used by the per-config sub-processes).")


def use_random_vgg(root=None):
  """Random VGG-16/19 weights under every id a config may name, in $LLE_WEIGHTS_DIR = `root` (default: a
  new temporary folder)."""
  import os
  import tempfile

  import numpy as np

  from lle import weights
  root = root or tempfile.mkdtemp(prefix="lle-random-vgg-")
  rng = np.random.default_rng(0)
  for depth in (16, 19):
    convs = {n: (rng.standard_normal(k).astype(np.float32) * np.sqrt(2.0 / (9 * k[2])), np.zeros(b, np.float32))
             for n, (k, b) in weights.expected_shapes(depth).items()}
    for source, preprocess in weights.PREPROCESS.items():
      weights.save(convs, arch=f"vgg{depth}", source=source, preprocess=preprocess, name=f"vgg{depth}_{source}",
                   out_dir=root, origin={"source_file": "random (benchmark)"})
  os.environ["LLE_WEIGHTS_DIR"] = root


def batch_shapes(config) -> dict[str, tuple[int, ...]]:
  """The shapes of one global training batch, as `lle.data.pipeline.train_dataset` makes them."""
  crop, n = config.data.crop_size, config.batch_size
  small = -(-crop // config.data.get("input_scale", 1))
  shapes = {"input": (n, small, small, 3), "target": (n, crop, crop, 3)}
  if config.data.get("recipe") == "neid":
    shapes["input_hr"] = (n, crop, crop, 3)  # the full-size low-light patch DR may be supervised by
  return shapes


def bench(spec, steps, overrides):
  """The table's row for a config spec with `key=value` overrides."""
  import jax

  from lle import config_lib

  config = config_lib.load(spec)
  for item in overrides:
    key, value = item.split("=", 1)
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = type(node[leaf])(eval(value)) if not isinstance(node[leaf], str) else value
  m = measure(config, steps)
  peak, kind = peak_memory_mb()
  return {"config": spec, "devices": f"{m['devices']}x {jax.devices()[0].device_kind}",
          "batch": config.batch_size, "size": m["size"], "images/s": m["images_per_s"],
          "step ms": m["step_ms"], "compile s": m["compile_s"], "peak MB": f"{peak:,.0f} ({kind})",
          "uses_vgg": m["uses_vgg"]}


def measure(config, steps, devices=None) -> dict:
  """The trainer's jitted, sharded train step of `config` on synthetic batches, over `devices` (default:
  those the trainer would use): images/s, step ms (mean of `steps` after a warm-up step), compile s, and
  the step's device buffers as XLA assigned them (`compiled_memory_mb`: arguments, outputs, temporaries)."""
  import jax
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec as P

  from lle import methods, train

  mesh = train.make_mesh(train.data_parallel_devices(config.batch_size, devices))
  method = methods.get(config)
  state, _ = train.init_state(method, config, mesh)
  data = NamedSharding(mesh, P("data"))
  replicated = NamedSharding(mesh, P())
  step_fn = jax.jit(method.train_step, in_shardings=(replicated, data, replicated),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  rng = np.random.default_rng(0)
  shapes = batch_shapes(config)
  batch = {k: jax.device_put(rng.random(shape, dtype=np.float32), data) for k, shape in shapes.items()}
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, batch, jax.random.key(0)).compile()
  compile_s = time.perf_counter() - t0
  state, m = compiled(state, batch, jax.random.key(0))  # warm-up
  jax.block_until_ready(m)
  t0 = time.perf_counter()
  for i in range(steps):
    state, m = compiled(state, batch, jax.random.key(i))
  jax.block_until_ready((state, m))
  step_s = (time.perf_counter() - t0) / steps
  size = "x".join(map(str, shapes["input"][1:3])) + " -> " + "x".join(map(str, shapes["target"][1:3]))
  return {"devices": mesh.size, "size": size, "images_per_s": config.batch_size / step_s, "step_ms": 1e3 * step_s,
          "compile_s": compile_s, "step_mb": compiled_memory_mb(compiled),
          "uses_vgg": isinstance(state, dict) and "vgg" in state}


HEADER = ("| config | devices | batch | size (input -> target) | images/s | step ms | compile s | peak MB |\n"
          "|---|---|---|---|---|---|---|---|")


def main(argv):
  del argv
  import subprocess
  if not FLAGS.noheader:
    print(HEADER, flush=True)
  if len(FLAGS.configs) > 1:  # one process per config: clean compile times and peak-memory readings
    for spec in FLAGS.configs:
      extra = [f"--override={','.join(FLAGS.override)}"] if FLAGS.override else []
      extra += ["--random_vgg"] if FLAGS.random_vgg else []
      subprocess.run([sys.executable, __file__, f"--configs={spec}", f"--steps={FLAGS.steps}", "--noheader",
                      *extra], check=True)
    return
  if FLAGS.random_vgg:
    use_random_vgg()
  row = bench(FLAGS.configs[0], FLAGS.steps, FLAGS.override)
  if row.pop("uses_vgg") and FLAGS.random_vgg:
    row["config"] += " (random VGG)"
  print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()) + " |",
        flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)

"""Low-light methods (GLADNet, NEID): training-step and full-resolution inference benchmark.

  python benchmarks/bench_lowlight.py                               # both papers at their training sizes
  python benchmarks/bench_lowlight.py --configs=configs/gladnet.py:demo --sizes=600x400 --steps=5

For each config: one row for the training step at the config's sizes (batch, patch; NEID's input is the
patch downsampled by `data.input_scale`) and one row per inference size, given as the *output* size
WxH (600x400 is a LOL image, 4000x3000 a 12-megapixel photo; NEID is fed the input at 1/scale). Each row
runs in its own process so that its peak memory is its own: the devices' peak bytes in use where the
backend reports them (GPU/TPU), the process's peak RSS on CPU. A row that runs out of memory says so.
Prints a Markdown table.
"""
import json
import subprocess
import sys
import time

from absl import app, flags

from memory import peak_memory_mb  # benchmarks/memory.py

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["configs/gladnet.py", "configs/neid.py"], "Config specs to time.")
flags.DEFINE_list("sizes", ["600x400", "4000x3000"], "Inference output sizes, WxH.")
flags.DEFINE_integer("steps", 5, "Timed steps (or inference calls) after the compiling one.")
flags.DEFINE_bool("train", True, "Time the training step.")
flags.DEFINE_string("row", None, "Internal: run one row (spec|train or spec|WxH) and print it as JSON.")


def _time(fn, args, steps):
  import jax
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t0
  out = compiled(*args)
  jax.block_until_ready(out)  # warm-up
  t0 = time.perf_counter()
  for _ in range(steps):
    out = compiled(*args)
  jax.block_until_ready(out)
  return compile_s, (time.perf_counter() - t0) / steps


def run_row(spec, what, steps):
  import jax
  import numpy as np

  from lle import config_lib, methods
  config = config_lib.load(spec)
  method = methods.get(config)
  scale = config.data.get("input_scale", 1)
  state = jax.jit(method.init)(jax.random.key(0))
  rng = np.random.default_rng(0)
  row = {"config": spec, "device": jax.devices()[0].device_kind}
  if what == "train":
    crop, batch = config.data.crop_size, config.batch_size
    b = {"input": rng.random((batch, crop // scale, crop // scale, 3), dtype=np.float32),
         "target": rng.random((batch, crop, crop, 3), dtype=np.float32)}
    if config.data.get("recipe") == "neid":
      b["input_hr"] = b["target"]
    compile_s, step_s = _time(lambda s, x: method.train_step(s, x, jax.random.key(0)), (state, b), steps)
    row.update(what=f"train {batch}x{crop // scale}x{crop // scale}", images_per_s=batch / step_s,
               step_ms=1e3 * step_s, compile_s=compile_s)
  else:
    w, h = map(int, what.split("x"))
    multiple = method.size_multiple
    ih, iw = -(-h // scale), -(-w // scale)
    ih, iw = -(-ih // multiple) * multiple, -(-iw // multiple) * multiple
    x = rng.random((1, ih, iw, 3), dtype=np.float32)
    compile_s, step_s = _time(method.predict, (state, x), steps)
    row.update(what=f"infer {w}x{h} (input {iw}x{ih})", images_per_s=1 / step_s, step_ms=1e3 * step_s,
               compile_s=compile_s)
  row["peak_mb"], row["memory"] = peak_memory_mb()
  return row


def main(argv):
  del argv
  if FLAGS.row:
    spec, what = FLAGS.row.split("|")
    print("ROW " + json.dumps(run_row(spec, what, FLAGS.steps)))
    return
  rows = []
  for spec in FLAGS.configs:
    for what in (["train"] if FLAGS.train else []) + list(FLAGS.sizes):
      proc = subprocess.run([sys.executable, __file__, f"--row={spec}|{what}", f"--steps={FLAGS.steps}"],
                            capture_output=True, text=True)
      line = next((l for l in proc.stdout.splitlines() if l.startswith("ROW ")), None)
      if line:
        rows.append(json.loads(line[4:]))
      else:
        err = proc.stderr.strip().splitlines()
        oom = any(k in proc.stderr for k in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory",
                                               "MemoryError")) or proc.returncode in (-9, 137)
        rows.append({"config": spec, "what": what, "error": "out of memory" if oom else
                     (err[-1] if err else f"exit {proc.returncode}")})
      print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
  print("| config | what | images/s | step ms | compile s | peak MB | device |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    if "error" in r:
      print(f"| {r['config']} | {r['what']} | {r['error']} | | | | |")
    else:
      print(f"| {r['config']} | {r['what']} | {r['images_per_s']:.3g} | {r['step_ms']:.1f} | "
            f"{r['compile_s']:.1f} | {r['peak_mb']:.0f} ({r['memory']}) | {r['device']} |")


if __name__ == "__main__":
  app.run(main)

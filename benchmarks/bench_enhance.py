"""Enhancing one large photo: one pass over the whole image (how evaluation used to run) against tiled
inference (`lle.enhance`), in seconds and peak memory.

  python benchmarks/bench_enhance.py                                   # GLADNet and NEID demo, 24 MP
  python benchmarks/bench_enhance.py --configs=configs/gladnet.py:demo --sizes=3000x2000 --modes=one_pass,tiled

Sizes are the photo's (= the output's) WxH; 6000x4000 is 24 megapixels. NEID is fed the photo downsampled
by `data.input_scale`, as in its evaluation. The weights are the config's initial ones (the speed and
memory of a trained checkpoint of the same architecture are the same). Each row runs in its own process,
so its peak memory (host RSS on CPU, device peak on GPU) is its own; `first s` includes compilation,
`second s` is another photo of the same size. A row that runs out of memory says so. Prints a Markdown
table.
"""
import json
import subprocess
import sys
import time

from absl import app, flags

from memory import peak_memory_mb  # benchmarks/memory.py

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["configs/gladnet.py:demo", "configs/neid.py:demo"], "Config specs.")
flags.DEFINE_list("sizes", ["6000x4000"], "Photo sizes, WxH.")
flags.DEFINE_list("modes", ["tiled"], "one_pass (the whole image in one call) and/or tiled (lle.enhance).")
flags.DEFINE_integer("tile", 512, "Window core size for the tiled mode.")
flags.DEFINE_string("row", None, "Internal: run one row (spec|WxH|mode) and print it as JSON.")


def _photo(h, w):
  import numpy as np
  rng = np.random.default_rng(0)
  ramp = np.linspace(0, 90, w, dtype=np.float32)[None, :, None]
  return np.clip(ramp + rng.normal(20, 8, (h, w, 3)).astype(np.float32), 0, 255).astype(np.uint8)


def run_row(spec, size, mode, tile):
  import jax
  import numpy as np

  from lle import config_lib, enhance, methods, tiling
  config = config_lib.load(spec)
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(0))
  w, h = map(int, size.split("x"))
  photo = _photo(h, w)
  times = []
  if mode == "tiled":
    enhancer = enhance.Enhancer(config, method, state, tile=tile)
    for _ in range(2):
      t0 = time.perf_counter()
      enhancer(photo)
      times.append(time.perf_counter() - t0)
  elif mode == "one_pass":
    from lle.data import pipeline
    predict = jax.jit(method.predict)
    for _ in range(2):
      t0 = time.perf_counter()
      x = pipeline.bicubic_downsample(photo, enhance.Enhancer._input_scale(config))
      x = tiling.pad_to_multiple(tiling.to_float(x), method.size_multiple)
      out = np.asarray(predict(state, x[None]))
      np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
      times.append(time.perf_counter() - t0)
  else:
    raise ValueError(f"unknown mode {mode!r}")
  peak, kind = peak_memory_mb()
  return {"config": spec, "size": size, "mode": mode, "first_s": times[0], "second_s": times[1],
          "peak_mb": peak, "memory": kind, "device": jax.devices()[0].device_kind,
          "megapixels_per_s": w * h / 1e6 / times[1]}


def main(argv):
  del argv
  if FLAGS.row:
    spec, size, mode = FLAGS.row.split("|")
    print("ROW " + json.dumps(run_row(spec, size, mode, FLAGS.tile)))
    return
  rows = []
  for spec in FLAGS.configs:
    for size in FLAGS.sizes:
      for mode in FLAGS.modes:
        proc = subprocess.run([sys.executable, __file__, f"--row={spec}|{size}|{mode}", f"--tile={FLAGS.tile}"],
                              capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("ROW ")), None)
        if line:
          rows.append(json.loads(line[4:]))
        else:
          oom = any(k in proc.stderr for k in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory",
                                                 "MemoryError")) or proc.returncode in (-9, 137)
          err = proc.stderr.strip().splitlines()
          rows.append({"config": spec, "size": size, "mode": mode,
                       "error": "out of memory" if oom else (err[-1] if err else f"exit {proc.returncode}")})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
  print("| config | photo | mode | first s (with compile) | second s | MP/s | peak MB | device |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    if "error" in r:
      print(f"| {r['config']} | {r['size']} | {r['mode']} | {r['error']} | | | | |")
    else:
      print(f"| {r['config']} | {r['size']} | {r['mode']} | {r['first_s']:.1f} | {r['second_s']:.1f} | "
            f"{r['megapixels_per_s']:.2f} | {r['peak_mb']:.0f} ({r['memory']}) | {r['device']} |")


if __name__ == "__main__":
  app.run(main)

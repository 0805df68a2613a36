"""Input-pipeline benchmark: images/s of each training recipe with 0 and 2 worker processes.

  python benchmarks/bench_pipeline.py [--configs=configs/itmn.py:demo,...] [--batches=20]

Compare a row with the matching train step's images/s from benchmarks/bench_train.py: the pipeline must
outrun the step, or the accelerator starves. Prints a Markdown table.
"""
import time

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
  """This script's flags, defined when it runs (not when another benchmark imports its functions)."""
  flags.DEFINE_list("configs", ["configs/itmn.py:demo", "configs/itmn.py"], "Config specs.")
  flags.DEFINE_list("workers", ["0", "2"], "Worker-process counts to time.")
  flags.DEFINE_integer("batches", 20, "Timed batches after the first.")
  flags.DEFINE_integer("warmup", 0, "Untimed batches after the first (e.g. one epoch of a small data set, so "
                       "that the rate is the steady state with config.data.cache_mb's cache full).")
  flags.DEFINE_integer("cache_mb", None, "Override config.data.cache_mb (0: no cache).")


def bench(spec: str, workers: int, batches: int) -> dict:
  from lle import config_lib
  config = config_lib.load(spec)
  config.data.worker_count = workers
  if FLAGS.cache_mb is not None:
    config.data.cache_mb = FLAGS.cache_mb
  return {"config": spec, **measure(config, batches, warmup=FLAGS.warmup)}


def measure(config, batches: int, *, warmup: int = 0) -> dict:
  """Images/s of `config`'s training batches (its data set, recipe, workers and cache), timed over
  `batches` batches after the first (start-up: opening the source, spawning workers) and `warmup` more."""
  from lle.data import pipeline
  it = pipeline.train_iterator(config, 0)
  first = next(it)
  for _ in range(warmup):
    next(it)
  t0 = time.perf_counter()
  for _ in range(batches):
    next(it)
  seconds = time.perf_counter() - t0
  shape = "x".join(map(str, first["input"].shape[1:]))
  return {"recipe": config.data.get("recipe", "crop_flip"), "workers": config.data.worker_count,
          "cache MB": config.data.cache_mb, "warm-up": warmup, "batch": config.batch_size, "input": shape,
          "images/s": batches * config.batch_size / seconds}


def main(argv):
  del argv
  print("| config | recipe | workers | cache MB | warm-up | batch | input | images/s |\n"
        "|---|---|---|---|---|---|---|---|", flush=True)
  for spec in FLAGS.configs:
    for workers in map(int, FLAGS.workers):
      row = bench(spec, workers, FLAGS.batches)
      print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()) + " |",
            flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)

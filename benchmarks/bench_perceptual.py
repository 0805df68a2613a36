"""The frozen-VGG feature loss's share of a generator train step, at the sizes of the two papers that use it.

  python benchmarks/bench_perceptual.py                          # the papers' sizes (a GPU's job)
  python benchmarks/bench_perceptual.py --batch_scale=0.1        # smaller batches, same image sizes (CPU)

Rows: iqe (Adlakha et al.: batch 50 of 100x100 RGB, VGG-19 relu5_4, DPED generator, DPED's SAME pools)
and tmgan (Montulet & Briassouli: 512x512 lightness, the fifth layer as torchvision counts it, a 7-level
U-Net). For each, one jitted generator step (forward, backward, Adam) is timed with and without the
feature loss; the loss's share is (with - without) / with. Random VGG weights: the speed does not depend
on their values. Peak memory is the devices' peak where reported, else the process's peak RSS.
"""
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from lle import losses, weights
from lle.nn import unet, vgg
from memory import peak_memory_mb  # benchmarks/memory.py

FLAGS = flags.FLAGS
flags.DEFINE_float("batch_scale", 1.0, "Multiply the papers' batch sizes (at least 1 image).")
flags.DEFINE_integer("steps", 3, "Timed steps after the compiling one.")


class DPEDGenerator(nn.Module):
  """DPED's generator shape (9x9 conv, 4 residual blocks of two 3x3 convs, two 3x3 convs, 9x9 conv)."""

  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Conv(64, (9, 9))(x))
    for _ in range(4):
      r = nn.relu(nn.GroupNorm(num_groups=None, group_size=1)(nn.Conv(64, (3, 3))(h)))
      r = nn.relu(nn.GroupNorm(num_groups=None, group_size=1)(nn.Conv(64, (3, 3))(r)))
      h = h + r
    h = nn.relu(nn.Conv(64, (3, 3))(nn.relu(nn.Conv(64, (3, 3))(h))))
    return jnp.tanh(nn.Conv(3, (9, 9))(h)) * 0.58 + 0.5


ROWS = [
    # name, batch, size, channels, generator, VGG tap, pool padding
    ("iqe", 50, 100, 3, "dped", "relu5_4", "SAME"),
    ("tmgan", 1, 512, 1, "unet", vgg.nth_layer(19, 5, "torchvision"), "VALID"),
]


def _random_vgg_params():
  rng = np.random.default_rng(0)
  return {name: {"kernel": (rng.standard_normal(k) * np.sqrt(2 / (9 * k[2]))).astype(np.float32),
                 "bias": np.zeros(b, np.float32)} for name, (k, b) in weights.expected_shapes(19).items()}


def bench(name, batch, size, channels, generator, tap, pool_padding, steps):
  batch = max(1, int(round(batch * FLAGS.batch_scale)))
  if generator == "dped":
    model = DPEDGenerator()
    apply = lambda p, x: model.apply({"params": p}, x)  # noqa: E731
  else:
    model = unet.UNet(features=(64, 128, 256, 512, 512, 512, 512), out_channels=channels,
                      output_activation="tanh")
    apply = lambda p, x: (model.apply({"params": p["params"], "batch_stats": p["batch_stats"]}, x, train=True,  # noqa: E731
                                      mutable=["batch_stats"])[0] + 1) / 2
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((batch, size, size, channels)), jnp.float32)
  y = jnp.asarray(rng.random((batch, size, size, channels)), jnp.float32)
  variables = model.init(jax.random.key(0), x, **({} if generator == "dped" else {"train": False}))
  params = variables["params"] if generator == "dped" else dict(variables)
  vgg_params = jax.tree.map(jnp.asarray, _random_vgg_params())
  preprocess = weights.PREPROCESS["matconvnet"]
  opt = optax.adam(1e-4)

  def make_step(with_vgg):
    def loss_fn(p, vgg_params):
      out = apply(p, x)
      loss = jnp.mean(jnp.square(out - y))
      if with_vgg:  # the weights are an argument: as a closed-over constant XLA would constant-fold them
        features = vgg.frozen_features(vgg_params, depth=19, taps=(tap,), pool_padding=pool_padding)
        loss = loss + losses.perceptual(out, y, features=features, layer=tap, preprocess=preprocess)
      return loss

    @jax.jit
    def step(p, opt_state, vgg_params):
      loss, grads = jax.value_and_grad(loss_fn)(p, vgg_params)
      updates, opt_state = opt.update(grads, opt_state, p)
      return optax.apply_updates(p, updates), opt_state, loss

    return step

  results = {}
  for with_vgg in (False, True):
    step = make_step(with_vgg)
    opt_state = opt.init(params)
    t0 = time.perf_counter()
    compiled = step.lower(params, opt_state, vgg_params).compile()
    compile_s = time.perf_counter() - t0
    p, s, loss = compiled(params, opt_state, vgg_params)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
      p, s, loss = compiled(p, s, vgg_params)
    jax.block_until_ready(loss)
    results[with_vgg] = ((time.perf_counter() - t0) / steps * 1000, compile_s)
  (without_ms, _), (with_ms, compile_s) = results[False], results[True]
  memory, kind = peak_memory_mb()
  return (f"| {name} | {batch}x{size}x{size}x{channels} | {tap} | {without_ms:.0f} | {with_ms:.0f} | "
          f"{(with_ms - without_ms) / with_ms:.0%} | {batch / with_ms * 1000:.1f} | {compile_s:.1f} | "
          f"{memory:.0f} ({kind}) |")


def main(argv):
  del argv
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind}")
  print("| row | batch | VGG tap | step ms (no VGG) | step ms (with VGG) | VGG share | images/s | compile s | peak MB |")
  print("|---|---|---|---|---|---|---|---|---|")
  for row in ROWS:
    print(bench(*row, FLAGS.steps), flush=True)


if __name__ == "__main__":
  app.run(main)

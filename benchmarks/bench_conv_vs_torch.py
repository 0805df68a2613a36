"""Single convolution layers of the methods' networks, lle against PyTorch: where a train step's time goes.

  pip install -e '.[bench]'     # torch: a benchmark-only extra
  python benchmarks/bench_conv_vs_torch.py [--layers=gladnet_demo,iqe_code_gen] [--repeats=3]

For each layer (its shape taken from a method's config; the row names where it occurs): the forward pass,
the input gradient and the weight gradient, each jitted on its own, as lle's networks run them
(`lle.nn.layers.space_to_depth_conv`, with its phase forms and CPU backward passes), as plain
`lax.conv_general_dilated` (XLA's own), and in PyTorch eager with contiguous (NCHW) and channels_last
tensors. Values are checked equal to PyTorch's before anything is timed. Prints milliseconds (medians over
rounds of the median of `--steps` calls), lle's rate in GFLOP/s, and lle / torch (> 1: lle is faster).
float32 on both sides (JAX at "highest" matmul precision, torch without TF32), on the default device of
each framework (a GPU when both see one).

A layer alone is not the layer inside a train step: there XLA fuses its neighbours into it or copies its
operands to other layouts, so a form that wins alone can lose in the step (and the other way round).
Choices between forms are made on paired train-step measurements (README, "Speed"); this table shows
where the time of the convolutions themselves goes.
"""
import statistics
import time

from absl import app, flags

FLAGS = flags.FLAGS
# name: (where, batch, size, kernel, stride, in channels, out channels)
LAYERS = {
    "itmn_demo_enc": ("itmn demo, U-Net encoder 2", 8, 64, 4, 2, 16, 32),
    "itmn_demo_disc": ("itmn demo, discriminator 1", 8, 128, 4, 2, 3, 16),
    "gladnet_demo": ("gladnet demo, detail convs", 8, 96, 3, 1, 32, 32),
    "neid_demo": ("neid demo, U-Net level 1", 8, 128, 3, 1, 16, 16),
    "itmn_paper_enc": ("itmn paper (b2), U-Net encoder 2", 2, 256, 4, 2, 64, 128),
    "gladnet_code": ("gladnet code (b2), detail convs", 2, 384, 3, 1, 128, 128),
    "neid_paper": ("neid paper (b2), U-Net level 1", 2, 128, 3, 1, 64, 64),
    "iqe_code_gen": ("iqe code (b2), generator blocks", 2, 100, 3, 1, 64, 64),
    "iqe_code_out": ("iqe code (b2), generator output", 2, 100, 9, 1, 64, 3),
    "iqe_code_vgg": ("iqe code (b2), VGG-19 conv3_x", 2, 25, 3, 1, 256, 256),
}
flags.DEFINE_list("layers", list(LAYERS), "Rows to run: " + ", ".join(LAYERS))
flags.DEFINE_integer("steps", 10, "Timed calls per part and round (after two untimed ones).")
flags.DEFINE_integer("repeats", 3, "Rounds; every system runs once per round, in turn.")

PARTS = ("forward", "input grad", "weight grad")


def _jax_parts(conv, x, w, gy):
  import jax
  return (jax.jit(conv),
          jax.jit(lambda x, w, gy: jax.vjp(lambda x: conv(x, w), x)[1](gy)[0]),
          jax.jit(lambda x, w, gy: jax.vjp(lambda w: conv(x, w), w)[1](gy)[0]))


def _median_ms(call, steps):
  call()
  call()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def run_layer(name):
  import jax
  import jax.numpy as jnp
  import numpy as np
  import torch

  from lle.nn.layers import space_to_depth_conv
  from torch_ports import common

  where, batch, size, k, stride, cin, cout = LAYERS[name]
  # 'SAME'-sized outputs, as the networks pad: (k - 1) // 2 for the 4x4 stride-2 layers, k // 2 otherwise.
  pad = (k - 1) // 2 if stride > 1 else k // 2
  pads = ((pad, k - 1 - pad),) * 2 if stride == 1 else ((pad, pad),) * 2
  rng = np.random.default_rng(0)
  x = rng.standard_normal((batch, size, size, cin), np.float32)
  w = (rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(np.float32)
  nhwc = ("NHWC", "HWIO", "NHWC")
  lle_conv = lambda x, w: space_to_depth_conv(x, w, (stride, stride), pads, dimension_numbers=nhwc)  # noqa: E731
  xla_conv = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731
      x, w, (stride, stride), pads, dimension_numbers=nhwc)
  y = np.asarray(jax.jit(lle_conv)(x, w))
  gy = rng.standard_normal(y.shape, np.float32)
  xj, wj, gyj = map(jnp.asarray, (x, w, gy))

  device = "cuda" if torch.cuda.is_available() and jax.default_backend() == "gpu" else "cpu"
  torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  xt, gyt = common.to_nchw(x).to(device), common.to_nchw(gy).to(device)
  wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).to(device)  # HWIO -> OIHW
  if pads[0][0] != pads[0][1]:
    raise ValueError(f"{name}: torch's conv2d pads symmetrically; {pads} is not")

  def torch_parts(memory_format):
    a, b, g = (t.contiguous(memory_format=memory_format) for t in (xt, wt, gyt))
    args = (g, a, b, None, [stride] * 2, [pads[0][0]] * 2, [1, 1], False, [0, 0], 1)
    fwd = lambda: torch.nn.functional.conv2d(a, b, stride=stride, padding=pads[0][0])  # noqa: E731
    dx = lambda: torch.ops.aten.convolution_backward(*args, [True, False, False])[0]  # noqa: E731
    dw = lambda: torch.ops.aten.convolution_backward(*args, [False, True, False])[1]  # noqa: E731
    return fwd, dx, dw

  systems = {"lle": _jax_parts(lle_conv, xj, wj, gyj), "xla": _jax_parts(xla_conv, xj, wj, gyj)}
  jax_args = ((xj, wj), (xj, wj, gyj), (xj, wj, gyj))
  calls = {s: [lambda f=f, a=a: jax.block_until_ready(f(*a)) for f, a in zip(fns, jax_args)]
           for s, fns in systems.items()}
  # The same arithmetic: every part of lle's and XLA's against each torch layout's, in lle's layouts.
  for label, fmt in (("torch eager", torch.contiguous_format), ("channels_last", torch.channels_last)):
    fns = torch_parts(fmt)
    calls[label] = [lambda f=f: (f(), sync()) for f in fns]
    with torch.no_grad():
      fwd, dx, dw = (f() for f in fns)
    wants = (common.to_nhwc(fwd), common.to_nhwc(dx), dw.permute(2, 3, 1, 0).cpu().numpy())  # OIHW -> HWIO
    for s, jax_fns in systems.items():
      for part, f, a, want in zip(PARTS, jax_fns, jax_args, wants):
        common.assert_close(f"{name} {part}, {s} vs {label}", want, f(*a), rtol=0, atol=1e-4 * np.abs(want).max())

  times = {s: [[] for _ in PARTS] for s in calls}
  with torch.no_grad():
    for _ in range(FLAGS.repeats):
      for s, parts in calls.items():
        for i, call in enumerate(parts):
          times[s][i].append(_median_ms(call, FLAGS.steps))
  ms = {s: [statistics.median(t) for t in per_part] for s, per_part in times.items()}
  out = y.shape[1] * y.shape[2]
  gflop = 2 * batch * out * k * k * cin * cout / 1e9  # per part: each is one such contraction
  return where, (batch, size, k, stride, cin, cout), ms, gflop


def main(argv):
  del argv
  unknown = [n for n in FLAGS.layers if n not in LAYERS]
  if unknown:
    raise app.UsageError(f"unknown --layers {unknown}; expected some of {list(LAYERS)}")
  import jax
  jax.config.update("jax_default_matmul_precision", "highest")
  print(f"device: {jax.devices()[0].device_kind}; ms per call (forward / input grad / weight grad), "
        f"medians of {FLAGS.repeats} rounds")
  print()
  print("| layer | shape | lle ms | XLA conv ms | torch eager ms | channels_last ms | lle GFLOP/s | "
        "lle / eager | lle / channels_last |")
  print("|---|---|---|---|---|---|---|---:|---:|")
  for name in FLAGS.layers:
    where, (b, s, k, st, ci, co), ms, gflop = run_layer(name)
    fmt = lambda v: " / ".join(f"{t:.2f}" for t in v)  # noqa: E731
    rates = " / ".join(f"{gflop / t * 1e3:.0f}" for t in ms["lle"])
    total = {sys_: sum(v) for sys_, v in ms.items()}
    print(f"| {where} | {b}x{s}^2, {k}x{k}/{st}, {ci}->{co} | {fmt(ms['lle'])} | {fmt(ms['xla'])} | "
          f"{fmt(ms['torch eager'])} | {fmt(ms['channels_last'])} | {rates} | "
          f"{total['torch eager'] / total['lle']:.2f} | {total['channels_last'] / total['lle']:.2f} |", flush=True)


if __name__ == "__main__":
  app.run(main)

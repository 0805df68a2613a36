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

Methods: gladnet (the other methods' PyTorch versions are not written yet).
"""
import json
import statistics
import subprocess
import sys
import time

from absl import app, flags

from memory import peak_memory_mb  # benchmarks/memory.py

FLAGS = flags.FLAGS
flags.DEFINE_list("methods", ["gladnet"], "Methods to compare.")
flags.DEFINE_list("variants", ["demo", "paper"], "Config variants ('paper' = the config's default).")
flags.DEFINE_list("systems", ["lle", "torch_eager", "torch_channels_last", "torch_compile"], "What to time.")
flags.DEFINE_integer("steps", 10, "Timed steps after the first.")
flags.DEFINE_integer("batch", None, "Override the config's batch size (e.g. paper sizes on a small CPU).")
flags.DEFINE_string("row", None, "Internal: run one row (method|variant|system) and print it as JSON.")


# --- PyTorch GLADNet (lle.nn.gladnet.GLADNet, TensorFlow 'SAME' padding and nearest resize) ------------


def _torch_gladnet(model_config):
  import torch
  import torch.nn.functional as F

  def same_pad(x, k, stride):
    """TensorFlow 'SAME': total padding max((ceil(n / s) - 1) s + k - n, 0), the extra pixel after."""
    pads = []
    for n in (x.shape[3], x.shape[2]):
      total = max((-(-n // stride) - 1) * stride + k - n, 0)
      pads += [total // 2, total - total // 2]
    return F.pad(x, pads)

  def resize_nearest(x, size):
    # source index floor(dst * in / out), as TensorFlow 1's resize_nearest_neighbor (checked equal below)
    return F.interpolate(x, size=tuple(size), mode="nearest")

  m = model_config

  class GLADNet(torch.nn.Module):
    def __init__(self):
      super().__init__()
      k, f = m.kernel_size, m.global_features
      self.encoder = torch.nn.ModuleList(
          [torch.nn.Conv2d(3 if i == 0 else f, f, k, stride=2) for i in range(m.num_blocks)])
      self.decoder = torch.nn.ModuleList([torch.nn.Conv2d(f, f, k) for _ in range(m.num_blocks)])
      widths = [f + 3] + list(m.detail_features)
      self.detail = torch.nn.ModuleList([torch.nn.Conv2d(a, b, k) for a, b in zip(widths, widths[1:])])
      self.output = torch.nn.Conv2d(widths[-1], 3, k)

    def conv(self, layer, x):
      return layer(same_pad(x, layer.kernel_size[0], layer.stride[0]))

    def forward(self, x):
      h, w = x.shape[2:]
      g = resize_nearest(x, (m.global_size, m.global_size))
      skips = []
      for layer in self.encoder:
        g = F.relu(self.conv(layer, g))
        skips.append(g)
      targets = [s.shape[2:] for s in skips[-2::-1]] + [(m.global_size, m.global_size)]
      for i, (layer, size) in enumerate(zip(self.decoder, targets)):
        g = F.relu(self.conv(layer, resize_nearest(g, size)))
        if i < m.num_blocks - 1:
          g = g + skips[-2 - i]
      y = torch.cat([resize_nearest(g, (h, w)), x], dim=1)
      for layer in self.detail:
        y = F.relu(self.conv(layer, y))
      y = self.conv(self.output, y)
      return F.relu(y) if m.output_activation == "relu" else y

  return GLADNet()


def _copy_conv_weights(flax_params, torch_module):
  """lle's Conv kernels [kh, kw, in, out] and biases, in creation order, into the torch Conv2d layers in
  registration order (the two networks create their layers in the same order)."""
  import numpy as np
  import torch
  convs = [mod for mod in torch_module.modules() if isinstance(mod, torch.nn.Conv2d)]
  layers = [flax_params[name] for name in sorted(flax_params, key=lambda n: int(n.rsplit("_", 1)[1]))]
  if len(layers) != len(convs):
    raise AssertionError(f"lle has {len(layers)} conv layers, the torch network {len(convs)}")
  with torch.no_grad():
    for layer, conv in zip(layers, convs):
      conv.weight.copy_(torch.from_numpy(np.asarray(layer["kernel"]).transpose(3, 2, 0, 1).copy()))
      conv.bias.copy_(torch.from_numpy(np.asarray(layer["bias"])))


def _torch_train_step(method, config, net, use_compile):
  import torch
  if method != "gladnet":
    raise ValueError(f"no PyTorch version of {method!r} yet")
  o = config.optimizer
  optimizer = torch.optim.Adam(net.parameters(), lr=o.learning_rate, betas=(o.b1, o.b2), eps=o.eps)
  weights = torch.tensor(config.loss.channel_weights, dtype=torch.float32).view(1, 3, 1, 1)

  forward = torch.compile(net, dynamic=False) if use_compile else net

  def loss_fn(x, target):
    return torch.mean(torch.abs(forward(x) - target) * weights.to(x.device))

  loss_call = loss_fn

  def step(x, target):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_call(x, target)
    loss.backward()
    optimizer.step()
    return loss

  return step, loss_fn


def _config(method, variant):
  sys.path.insert(0, ".")
  from lle import config_lib
  config = config_lib.load(f"configs/{method}.py" + ("" if variant == "paper" else f":{variant}"))
  if FLAGS.batch:
    config.batch_size = FLAGS.batch
  return config


def check_equal(method, variant="tiny"):
  """Parameter counts, output, loss and first-layer gradient of lle and torch on a small input."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import torch
  from lle import methods
  config = _config(method, variant)
  lle_method = methods.get(config)
  state = jax.jit(lle_method.init)(jax.random.key(0))
  params = state["net"].params
  net = _torch_gladnet(config.model)
  lle_count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
  torch_count = sum(p.numel() for p in net.parameters())
  assert lle_count == torch_count, (lle_count, torch_count)
  _copy_conv_weights(params, net)
  rng = np.random.default_rng(0)
  size = 2 * config.model.global_size + 6  # not a multiple of the global size: exercises the resizes
  x = rng.random((2, size, size, 3), np.float32)
  target = rng.random((2, size, size, 3), np.float32)
  with jax.default_matmul_precision("highest"):
    out = state["net"].apply_fn({"params": params}, jnp.asarray(x))
    loss_of = lambda p: jnp.mean(jnp.abs(state["net"].apply_fn({"params": p}, x) - target)
                                 * jnp.asarray(config.loss.channel_weights))
    loss, grads = jax.value_and_grad(loss_of)(params)
  _, torch_loss_fn = _torch_train_step(method, config, net, False)
  tx, tt = torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(target).permute(0, 3, 1, 2)
  torch_out = net(tx).detach().permute(0, 2, 3, 1).numpy()
  torch_loss = torch_loss_fn(tx, tt)
  torch_loss.backward()
  first = next(iter(params))
  np.testing.assert_allclose(torch_out, np.asarray(out), atol=1e-5, rtol=1e-4)
  np.testing.assert_allclose(float(torch_loss.detach()), float(loss), rtol=1e-5)
  torch_grad = net.encoder[0].weight.grad.numpy().transpose(2, 3, 1, 0)
  np.testing.assert_allclose(torch_grad, np.asarray(grads[first]["kernel"]), atol=1e-6, rtol=1e-3)
  return lle_count


def run_row(method, variant, system, steps):
  import numpy as np
  config = _config(method, variant)
  size = config.data.crop_size
  rng = np.random.default_rng(0)
  x = rng.random((config.batch_size, size, size, 3), np.float32)
  target = rng.random((config.batch_size, size, size, 3), np.float32)
  times = []
  if system == "lle":
    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    from lle import methods
    lle_method = methods.get(config)
    state = jax.jit(lle_method.init)(jax.random.key(0))
    step = jax.jit(lle_method.train_step, donate_argnums=0)
    batch = {"input": jax.device_put(x), "target": jax.device_put(target)}
    for i in range(steps + 1):
      t0 = time.perf_counter()
      state, metrics = step(state, batch, jax.random.key(i))
      jax.block_until_ready(metrics["loss"])
      times.append(time.perf_counter() - t0)
    device = jax.devices()[0].platform
    memory, kind = peak_memory_mb()
  else:
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = _torch_gladnet(config.model).to(device)
    fmt = torch.channels_last if system == "torch_channels_last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    step, _ = _torch_train_step(method, config, net, system == "torch_compile")
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).to(device).contiguous(memory_format=fmt)
    tt = torch.from_numpy(target).permute(0, 3, 1, 2).to(device).contiguous(memory_format=fmt)
    for _ in range(steps + 1):
      t0 = time.perf_counter()
      loss = step(tx, tt)
      float(loss)  # waits for the step
      times.append(time.perf_counter() - t0)
    if device == "cuda":
      memory, kind = torch.cuda.max_memory_allocated() / 2**20, "device"
    else:
      from memory import host_peak_rss_mb
      memory, kind = host_peak_rss_mb(), "host RSS"
  step_s = statistics.median(times[1:])
  return {"method": method, "variant": variant, "system": system, "batch": config.batch_size,
          "input": f"{size}x{size}", "images_per_s": config.batch_size / step_s, "step_ms": step_s * 1e3,
          "compile_s": times[0], "peak_mb": memory, "memory": kind, "device": device}


def main(argv):
  del argv
  if FLAGS.row:
    method, variant, system = FLAGS.row.split("|")
    print(json.dumps(run_row(method, variant, system, FLAGS.steps)), flush=True)
    return
  rows = []
  for method in FLAGS.methods:
    count = check_equal(method)
    print(f"{method}: {count:,} parameters in both; output, loss and gradients equal on a small input",
          flush=True)
    for variant in FLAGS.variants:
      for system in FLAGS.systems:
        args = [sys.executable, __file__, f"--row={method}|{variant}|{system}", f"--steps={FLAGS.steps}"]
        if FLAGS.batch:
          args.append(f"--batch={FLAGS.batch}")
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode:
          print(f"{method} {variant} {system} failed:\n{out.stderr[-2000:]}", flush=True)
          continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
  print("\n| method | size | system | batch | input | images/s | step ms | compile s | peak MB | lle / this |")
  print("|---|---|---|---|---|---:|---:|---:|---:|---:|")
  for r in rows:
    lle = next((q for q in rows if q["method"] == r["method"] and q["variant"] == r["variant"]
                and q["system"] == "lle"), None)
    ratio = f"{lle['images_per_s'] / r['images_per_s']:.2f}" if lle else "-"
    print(f"| {r['method']} | {r['variant']} | {r['system']} | {r['batch']} | {r['input']} | "
          f"{r['images_per_s']:.1f} | {r['step_ms']:.1f} | {r['compile_s']:.1f} | {r['peak_mb']:.0f} "
          f"({r['memory']}) | {ratio} |")
  print(f"\ndevice: {rows[0]['device'] if rows else '-'}; float32 on both sides")


if __name__ == "__main__":
  app.run(main)

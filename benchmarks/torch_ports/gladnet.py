"""PyTorch GLADNet (lle.nn.gladnet.GLADNet, lle.methods.gladnet): TensorFlow 'SAME' padding, nearest resize,
channel-weighted L1, Adam."""
import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from torch_ports import common


def _resize_nearest(x, size):
  # source index floor(dst * in / out), as TensorFlow 1's resize_nearest_neighbor (checked in check_equal)
  return F.interpolate(x, size=tuple(size), mode="nearest")


class GLADNet(torch.nn.Module):

  def __init__(self, m):
    super().__init__()
    self.m = m
    k, f = m.kernel_size, m.global_features
    self.encoder = torch.nn.ModuleList(
        [common.SameConv2d(3 if i == 0 else f, f, k, stride=2) for i in range(m.num_blocks)])
    self.decoder = torch.nn.ModuleList([common.SameConv2d(f, f, k) for _ in range(m.num_blocks)])
    widths = [f + 3] + list(m.detail_features)
    self.detail = torch.nn.ModuleList([common.SameConv2d(a, b, k) for a, b in zip(widths, widths[1:])])
    self.output = common.SameConv2d(widths[-1], 3, k)

  def forward(self, x):
    m = self.m
    h, w = x.shape[2:]
    g = _resize_nearest(x, (m.global_size, m.global_size))
    skips = []
    for layer in self.encoder:
      g = F.relu(layer(g))
      skips.append(g)
    targets = [s.shape[2:] for s in skips[-2::-1]] + [(m.global_size, m.global_size)]
    for i, (layer, size) in enumerate(zip(self.decoder, targets)):
      g = F.relu(layer(_resize_nearest(g, size)))
      if i < m.num_blocks - 1:
        g = g + skips[-2 - i]
    y = torch.cat([_resize_nearest(g, (h, w)), x], dim=1)
    for layer in self.detail:
      y = F.relu(layer(y))
    y = self.output(y)
    return F.relu(y) if m.output_activation == "relu" else y


def build(config):
  return GLADNet(config.model)


def load_from_lle(module, state):
  """lle's Conv layers, in creation order, into the torch convolutions in registration order (the two
  networks create their layers in the same order)."""
  layers = common.numbered(state["net"].params)
  convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
  if len(layers) != len(convs):
    raise AssertionError(f"lle has {len(layers)} conv layers, the torch network {len(convs)}")
  for layer, conv in zip(layers, convs):
    common.copy_conv(conv, layer)


def _loss(config, out, target):
  weights = torch.tensor(config.loss.channel_weights, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
  return torch.mean(torch.abs(out - target) * weights)


def make_step(config, module, *, use_compile):
  o = config.optimizer
  optimizer = torch.optim.Adam(module.parameters(), lr=o.learning_rate, betas=(o.b1, o.b2), eps=o.eps)
  forward = torch.compile(module, dynamic=False) if use_compile else module

  def step(batch):
    optimizer.zero_grad(set_to_none=True)
    loss = _loss(config, forward(batch["input"]), batch["target"])
    loss.backward()
    optimizer.step()
    return loss

  return step


def batch(config, rng):
  size = config.data.crop_size
  return {k: rng.random((config.batch_size, size, size, 3), np.float32) for k in ("input", "target")}


def check_equal(config, lle_method, state, module):
  params = state["net"].params
  rng = np.random.default_rng(0)
  size = 2 * config.model.global_size + 6  # not a multiple of the global size: exercises the resizes
  x, target = (rng.random((2, size, size, 3), np.float32) for _ in range(2))
  with jax.default_matmul_precision("highest"):
    out = state["net"].apply_fn({"params": params}, jnp.asarray(x))
    loss_of = lambda p: jnp.mean(jnp.abs(state["net"].apply_fn({"params": p}, x) - target)
                                 * jnp.asarray(config.loss.channel_weights))
    loss, grads = jax.value_and_grad(loss_of)(params)
  torch_out = module(common.to_nchw(x))
  torch_loss = _loss(config, torch_out, common.to_nchw(target))
  torch_loss.backward()
  common.assert_close("output", common.to_nhwc(torch_out), out, atol=1e-5, rtol=1e-4)
  common.assert_close("loss", torch_loss, loss, atol=0, rtol=1e-5)
  common.assert_close("first conv's kernel gradient", module.encoder[0].weight.grad.numpy().transpose(2, 3, 1, 0),
                      common.numbered(grads)[0]["kernel"], atol=1e-6, rtol=1e-3)

"""PyTorch iTMN (lle.methods.itmn): batch-norm U-Net generator (lle.nn.unet.UNet), conv + FC discriminator
(lle.nn.discriminator.ConvFCDiscriminator), MSE + alpha dMSE content loss with the adversarial regulariser,
one generator update then one discriminator update per step, each with its own optax-style optimiser."""
import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F

from torch_ports import common

_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "none": lambda x: x}


class BatchNorm(torch.nn.BatchNorm2d):
  """Flax BatchNorm in training mode. `update_stats=False` normalises by the batch's statistics without
  touching the running averages: lle discards the statistics of some training-mode passes (D inside G's
  step, G_{k+1} inside D's step). Flax's momentum m is torch's 1 - m. Torch keeps an unbiased running
  variance where Flax keeps the biased one (n / (n - 1) apart); neither enters a training step."""

  def __init__(self, features, *, momentum, eps):
    super().__init__(features, eps=eps, momentum=1.0 - momentum)

  def forward(self, x, update_stats=True):
    if not self.training or update_stats:
      return super().forward(x)
    return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)


def _down_pad(kernel_size):
  return (kernel_size - 1) // 2  # lle's explicit symmetric padding of the stride-2 convolutions


class UNet(torch.nn.Module):
  """lle.nn.unet.UNet: stride-2 conv (no bias) -> BN -> LeakyReLU down; stride-2 transposed conv with
  padding (k - 2) / 2 up (lle computes it in a sub-pixel form, the same function and kernel), the
  mirrored encoder map concatenated before each but the first; bias and output activation on the last."""

  def __init__(self, g, out_channels=3):
    super().__init__()
    k, features = g.kernel_size, list(g.features)
    if k % 2:
      raise ValueError(f"lle's transposed convolution needs an even kernel, got {k}")
    self.slope, self.activation = g.negative_slope, g.output_activation
    norm = lambda f: BatchNorm(f, momentum=g.bn_momentum, eps=1e-5)
    widths = [3] + features
    self.down = torch.nn.ModuleList(torch.nn.Conv2d(a, b, k, stride=2, padding=_down_pad(k), bias=False)
                                    for a, b in zip(widths, widths[1:]))
    self.down_norms = torch.nn.ModuleList(norm(f) for f in features)
    up = features[-2::-1] + [out_channels]
    ins = [features[-1]] + [a + s for a, s in zip(up, features[-2::-1])]
    self.up = torch.nn.ModuleList(
        torch.nn.ConvTranspose2d(a, b, k, stride=2, padding=(k - 2) // 2, bias=i == len(up) - 1)
        for i, (a, b) in enumerate(zip(ins, up)))
    self.up_norms = torch.nn.ModuleList(norm(f) for f in up[:-1])

  def forward(self, x, update_stats: bool = True):
    skips = []
    for conv, norm in zip(self.down, self.down_norms):
      x = F.leaky_relu(norm(conv(x), update_stats), self.slope, inplace=True)
      skips.append(x)
    for i, conv in enumerate(self.up):
      if i > 0:
        x = torch.cat([x, skips[-1 - i]], dim=1)
      x = conv(x)
      if i < len(self.up_norms):
        x = F.leaky_relu(self.up_norms[i](x, update_stats), self.slope, inplace=True)
    return _ACTIVATIONS[self.activation](x)


def _conv_out(n, kernel_size):
  return (n + 2 * _down_pad(kernel_size) - kernel_size) // 2 + 1


class ConvFCDiscriminator(torch.nn.Module):
  """lle.nn.discriminator.ConvFCDiscriminator: stride-2 conv (no bias) -> BN -> LeakyReLU blocks, flatten,
  Dense -> LeakyReLU layers, one logit per image."""

  def __init__(self, d, crop_size):
    super().__init__()
    k, features = d.kernel_size, list(d.conv_features)
    self.slope = d.negative_slope
    widths = [3] + features
    self.convs = torch.nn.ModuleList(torch.nn.Conv2d(a, b, k, stride=2, padding=_down_pad(k), bias=False)
                                     for a, b in zip(widths, widths[1:]))
    self.norms = torch.nn.ModuleList(BatchNorm(f, momentum=d.bn_momentum, eps=1e-5) for f in features)
    size = crop_size
    for _ in features:
      size = _conv_out(size, k)
    self.final_shape = (features[-1], size, size)  # what the first Dense sees, NCHW
    fc = [features[-1] * size * size] + list(d.fc_features) + [1]
    self.dense = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(fc, fc[1:]))

  def forward(self, x, update_stats: bool = True):
    for conv, norm in zip(self.convs, self.norms):
      x = F.leaky_relu(norm(conv(x), update_stats), self.slope, inplace=True)
    x = x.flatten(1)
    for layer in self.dense[:-1]:
      x = F.leaky_relu(layer(x), self.slope, inplace=True)
    return self.dense[-1](x)[:, 0]


def build(config):
  nets = {"gen": UNet(config.generator)}
  if config.loss.adversarial:
    nets["disc"] = ConvFCDiscriminator(config.discriminator, config.data.crop_size)
  return torch.nn.ModuleDict(nets)


def _layers(tree, prefix):
  return common.numbered({k: v for k, v in tree.items() if k.startswith(prefix + "_")})


def _copy_norms(norms, params, stats):
  if len(norms) != len(_layers(params, "BatchNorm")):
    raise AssertionError(f"lle has {len(_layers(params, 'BatchNorm'))} batch norms, torch {len(norms)}")
  with torch.no_grad():
    for norm, p, s in zip(norms, _layers(params, "BatchNorm"), _layers(stats, "BatchNorm")):
      norm.weight.copy_(torch.from_numpy(np.array(p["scale"])))
      norm.bias.copy_(torch.from_numpy(np.array(p["bias"])))
      norm.running_mean.copy_(torch.from_numpy(np.array(s["mean"])))
      norm.running_var.copy_(torch.from_numpy(np.array(s["var"])))


def _copy_conv_transpose(conv, flax_layer):
  """lle's ConvTranspose2x kernel [k, k, in, out] is in the scatter convention of torch's ConvTranspose2d
  (y[2i - p + k] += x[i] w[k]), whose weight is [in, out, k, k]: a transpose, no flip."""
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(np.array(flax_layer["kernel"]).transpose(2, 3, 0, 1).copy()))
    if conv.bias is not None:
      conv.bias.copy_(torch.from_numpy(np.array(flax_layer["bias"])))


def _copy_flatten_dense(linear, flax_layer, shape):
  """A Dense after Flax's NHWC flatten (h, w, c order) into a Linear after torch's NCHW one (c, h, w)."""
  c, h, w = shape
  kernel = np.asarray(flax_layer["kernel"]).reshape(h, w, c, -1).transpose(3, 2, 0, 1)
  with torch.no_grad():
    linear.weight.copy_(torch.from_numpy(kernel.reshape(-1, c * h * w).copy()))
    linear.bias.copy_(torch.from_numpy(np.array(flax_layer["bias"])))


def load_from_lle(module, state):
  gen, params = module["gen"], state["gen"].params
  for conv, layer in zip(gen.down, _layers(params, "Conv"), strict=True):
    common.copy_conv(conv, layer)
  for conv, layer in zip(gen.up, _layers(params, "ConvTranspose2x"), strict=True):
    _copy_conv_transpose(conv, layer)
  _copy_norms(list(gen.down_norms) + list(gen.up_norms), params, state["gen"].batch_stats)
  if "disc" in module:
    disc, params = module["disc"], state["disc"].params
    for conv, layer in zip(disc.convs, _layers(params, "Conv"), strict=True):
      common.copy_conv(conv, layer)
    _copy_norms(list(disc.norms), params, state["disc"].batch_stats)
    dense = _layers(params, "Dense")
    if len(dense) != len(disc.dense):
      raise AssertionError(f"lle has {len(dense)} dense layers, torch {len(disc.dense)}")
    _copy_flatten_dense(disc.dense[0], dense[0], disc.final_shape)
    for linear, layer in zip(disc.dense[1:], dense[1:]):
      common.copy_dense(linear, layer)


# Losses (lle.losses).

def _reduce(per_element, reduction):
  if reduction == "mean":
    return per_element.mean()
  if reduction == "sum":
    return per_element.sum(dim=(1, 2, 3)).mean()
  raise ValueError(f"unknown reduction {reduction!r}")


def _dmse(pred, target, reduction):
  dx = (pred[..., 1:] - pred[..., :-1]) - (target[..., 1:] - target[..., :-1])
  dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
  return _reduce(dx.square(), reduction) + _reduce(dy.square(), reduction)


def _regularizer(real_logits, fake_logits):
  """Ning et al. eq. 3 with D = P(generated): E[log(1 - D(H))] + E[log D(G(L))]."""
  real = 0.0 if real_logits is None else F.logsigmoid(-real_logits).mean()
  return real + F.logsigmoid(fake_logits).mean()


def _generator_adversarial(fake_logits, real_logits, form):
  if form == "saturating":
    return _regularizer(real_logits, fake_logits)
  if form == "non_saturating":
    return -F.logsigmoid(-fake_logits).mean()
  raise ValueError(f"unknown loss.generator_adversarial {form!r}")


def _discriminate(disc, real, fake, batches, update_stats):
  """lle.methods.itmn.discriminate: 'separate' passes (real first), or one pass over [real; fake]."""
  if batches == "separate":
    real_logits = None if real is None else disc(real, update_stats)
    return real_logits, disc(fake, update_stats)
  if batches == "joint":
    logits = disc(torch.cat([real, fake], dim=0), update_stats)
    return logits[:real.shape[0]], logits[real.shape[0]:]
  raise ValueError(f"unknown discriminator.batches {batches!r}")


def _gen_loss(config, gen, disc, ldr, hdr):
  """G's loss at D_k: lambda (MSE + alpha dMSE) + R; D runs in training mode without keeping statistics."""
  lc = config.loss
  fake = gen(ldr)
  mse = _reduce((fake - hdr).square(), lc.reduction)
  dmse = _dmse(fake, hdr, lc.reduction)
  content = mse + lc.alpha * dmse
  terms = {"mse": mse, "dmse": dmse, "content": content}
  loss = lc.lam * content
  if disc is not None:
    batches = config.discriminator.batches
    real_logits, fake_logits = _discriminate(disc, hdr if batches == "joint" else None, fake, batches, False)
    adv = _generator_adversarial(fake_logits, real_logits, lc.generator_adversarial)
    loss = loss + lc.adversarial_weight * adv
    terms["g_adversarial"] = adv
  return loss, fake, terms


def _disc_loss(config, disc, hdr, fake):
  real_logits, fake_logits = _discriminate(disc, hdr, fake, config.discriminator.batches, True)
  return -_regularizer(real_logits, fake_logits)


# Optimiser (lle.optim.make): optax's RMSProp puts eps inside the square root (torch's RMSprop outside),
# so it is written here; optax's Adam is torch's Adam. Both follow lle's learning-rate schedule.

def _schedule(o):
  lr = o.learning_rate
  if o.schedule == "constant":
    return lambda count: lr
  if o.schedule in ("step", "exponential"):
    if o.decay_every <= 0:
      return lambda count: lr
    if o.schedule == "step":
      return lambda count: lr * o.decay_factor ** (count // o.decay_every)
    return lambda count: lr * o.decay_factor ** (count / o.decay_every)
  if o.schedule == "piecewise":
    steps = list(zip(o.boundaries, o.boundary_factors))
    return lambda count: lr * math.prod(f for b, f in steps if count >= b)
  from lle import optim  # anything else: lle's own schedule, evaluated on the host
  schedule = optim.schedule(o)
  return lambda count: float(schedule(count))


class RMSProp(torch.optim.Optimizer):
  """optax.rmsprop (no momentum, not centred): nu = decay nu + (1 - decay) g^2; p -= lr(t) g / sqrt(nu + eps)."""

  def __init__(self, params, schedule, *, decay, eps):
    super().__init__(params, {"decay": decay, "eps": eps})
    self.schedule, self.count = schedule, 0

  @torch.no_grad()
  def step(self):
    lr = self.schedule(self.count)
    self.count += 1
    for group in self.param_groups:
      params = [p for p in group["params"] if p.grad is not None]
      grads = [p.grad for p in params]
      nus = []
      for p in params:
        if "nu" not in self.state[p]:
          self.state[p]["nu"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        nus.append(self.state[p]["nu"])
      torch._foreach_mul_(nus, group["decay"])
      torch._foreach_addcmul_(nus, grads, grads, value=1.0 - group["decay"])
      scale = torch._foreach_add(nus, group["eps"])
      torch._foreach_rsqrt_(scale)
      torch._foreach_mul_(scale, grads)
      torch._foreach_add_(params, scale, alpha=-lr)


class Adam(torch.optim.Adam):
  """torch's Adam (optax.adam's arithmetic) with lle's schedule set before each step."""

  def __init__(self, params, schedule, *, b1, b2, eps):
    super().__init__(params, lr=schedule(0), betas=(b1, b2), eps=eps)
    self.schedule, self.count = schedule, 0

  def step(self):
    for group in self.param_groups:
      group["lr"] = self.schedule(self.count)
    self.count += 1
    return super().step()


def _optimizer(o, params):
  schedule = _schedule(o)
  if o.name == "rmsprop":
    return RMSProp(params, schedule, decay=o.rmsprop_decay, eps=o.eps)
  if o.name == "adam":
    return Adam(params, schedule, b1=o.b1, b2=o.b2, eps=o.eps)
  raise ValueError(f"unknown optimizer.name {o.name!r}")


def _make_step(config, module, *, use_compile):
  """step(batch) -> (g_loss, terms, d_loss): lle.methods.itmn.train_step's order, G then D on G_{k+1}."""
  gen, disc = module["gen"], module["disc"] if "disc" in module else None
  gen_opt = _optimizer(config.optimizer, gen.parameters())
  disc_opt = _optimizer(config.optimizer, disc.parameters()) if disc is not None else None
  gen_params = list(gen.parameters())
  module.train()
  gen_f = torch.compile(gen, dynamic=False) if use_compile else gen
  disc_f = (torch.compile(disc, dynamic=False) if use_compile else disc) if disc is not None else None

  def step(batch):
    ldr, hdr = batch["input"], batch["target"]
    gen_opt.zero_grad(set_to_none=True)
    g_loss, _, terms = _gen_loss(config, gen_f, disc_f, ldr, hdr)
    g_loss.backward(inputs=gen_params)  # D_k is fixed in G's step: no gradient for D's parameters
    gen_opt.step()
    d_loss = None
    if disc is not None:
      with torch.no_grad():
        fake = gen_f(ldr, False)  # G_{k+1}(L); lle discards these batch statistics
      disc_opt.zero_grad(set_to_none=True)
      d_loss = _disc_loss(config, disc_f, hdr, fake)
      d_loss.backward()
      disc_opt.step()
    return g_loss, terms, d_loss

  return step


def make_step(config, module, *, use_compile):
  step = _make_step(config, module, use_compile=use_compile)
  return lambda batch: step(batch)[0]


def batch(config, rng):
  size = config.data.crop_size
  return {k: rng.random((config.batch_size, size, size, 3), np.float32) for k in ("input", "target")}


def _grabbing_tx():
  """An optax transformation that leaves the parameters alone and keeps the last gradient as its state:
  lle's own train_step then hands back the exact gradients it computed."""
  return optax.GradientTransformation(
      lambda params: jax.tree.map(jnp.zeros_like, params),
      lambda grads, state, params=None: (jax.tree.map(jnp.zeros_like, grads), grads))


def _torch_tree(net, kind):
  """A torch network's parameters/statistics named and laid out as lle's, for comparison."""
  out = {}
  if isinstance(net, UNet):
    convs = [("Conv", c) for c in net.down] + [("ConvTranspose2x", c) for c in net.up]
    norms, dense = list(net.down_norms) + list(net.up_norms), []
  else:
    convs, norms, dense = [("Conv", c) for c in net.convs], list(net.norms), list(net.dense)
  counts = {}

  def name(prefix):
    counts[prefix] = counts.get(prefix, -1) + 1
    return f"{prefix}_{counts[prefix]}"

  t = lambda x: x.detach().numpy()
  for i, norm in enumerate(norms):
    out[name("BatchNorm")] = ({"scale": t(norm.weight), "bias": t(norm.bias)} if kind == "params"
                              else {"mean": t(norm.running_mean), "var": t(norm.running_var)})
  if kind == "stats":
    return out
  for prefix, conv in convs:
    layer = {"kernel": t(conv.weight).transpose((2, 3, 1, 0) if prefix == "Conv" else (2, 3, 0, 1))}
    if conv.bias is not None:
      layer["bias"] = t(conv.bias)
    out[name(prefix)] = layer
  for i, linear in enumerate(dense):
    kernel = t(linear.weight).T
    if i == 0:
      c, h, w = net.final_shape
      kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    out[name("Dense")] = {"kernel": kernel, "bias": t(linear.bias)}
  return out


def _grads_tree(net):
  saved = {n: p.data.clone() for n, p in net.named_parameters()}
  with torch.no_grad():
    for p in net.parameters():
      p.data = p.grad if p.grad is not None else torch.zeros_like(p)
  tree = _torch_tree(net, "params")
  with torch.no_grad():
    for n, p in net.named_parameters():
      p.data = saved[n]
  return tree


def _assert_trees_close(what, torch_tree, lle_tree, *, atol_scale, rtol):
  """Every leaf, with an absolute tolerance scaled to the leaf's largest magnitude."""
  if set(torch_tree) != set(lle_tree):
    raise AssertionError(f"{what}: torch has layers {sorted(torch_tree)}, lle {sorted(lle_tree)}")
  for layer in sorted(lle_tree):
    for leaf, value in lle_tree[layer].items():
      value = np.asarray(value)
      common.assert_close(f"{what} {layer}/{leaf}", torch_tree[layer][leaf], value,
                          atol=atol_scale * max(float(np.abs(value).max()), 1e-30), rtol=rtol)


def check_equal(config, lle_method, state, module):
  """On a small random batch (the config's crop size: D's dense layer fixes it; batch 4): G's output, the
  loss terms, every gradient of G's and D's steps (taken from lle's train_step itself), and after one
  whole train step both networks' parameters and statistics."""
  rng = np.random.default_rng(0)
  size = config.data.crop_size
  data = {k: rng.random((4, size, size, 3), np.float32) for k in ("input", "target")}
  x, target = (common.to_nchw(data[k]) for k in ("input", "target"))
  adversarial = "disc" in state

  with jax.default_matmul_precision("highest"):
    gen = state["gen"]
    out, _ = gen.apply_fn({"params": gen.params, "batch_stats": gen.batch_stats}, jnp.asarray(data["input"]),
                          train=True, mutable=["batch_stats"])
    grab = {n: s.replace(tx=_grabbing_tx(), opt_state=_grabbing_tx().init(s.params)) for n, s in state.items()}
    grabbed, metrics = jax.jit(lle_method.train_step)(grab, data, jax.random.key(0))
    stepped, step_metrics = jax.jit(lle_method.train_step)(state, data, jax.random.key(0))

  # Gradients: G's loss at (G_k, D_k), then D's loss on G_k's output (the grabbing optimiser leaves G_k
  # unchanged, so lle's D step sees G_k too).
  nets = copy.deepcopy(module).train()
  g, d = nets["gen"], nets["disc"] if adversarial else None
  g_loss, fake, terms = _gen_loss(config, g, d, x, target)
  g_loss.backward(inputs=list(g.parameters()))
  common.assert_close("generator output", common.to_nhwc(fake), out, atol=1e-5, rtol=1e-4)
  for name, value in terms.items():
    common.assert_close(f"generator loss term {name}", value, metrics[name], atol=1e-6, rtol=1e-4)
  common.assert_close("generator loss", g_loss, metrics["g_loss"], atol=0, rtol=1e-4)
  _assert_trees_close("generator gradient", _grads_tree(g), grabbed["gen"].opt_state, atol_scale=1e-4, rtol=1e-3)
  if adversarial:
    with torch.no_grad():
      fake = g(x, False)
    d_loss = _disc_loss(config, d, target, fake)
    d_loss.backward()
    common.assert_close("discriminator loss", d_loss, metrics["d_loss"], atol=1e-6, rtol=1e-4)
    _assert_trees_close("discriminator gradient", _grads_tree(d), grabbed["disc"].opt_state, atol_scale=1e-4,
                        rtol=1e-3)

  # One whole train step, as make_step runs it.
  nets = copy.deepcopy(module)
  g_loss, _, d_loss = _make_step(config, nets, use_compile=False)({"input": x, "target": target})
  common.assert_close("train step generator loss", g_loss, step_metrics["g_loss"], atol=0, rtol=1e-4)
  if adversarial:
    common.assert_close("train step discriminator loss", d_loss, step_metrics["d_loss"], atol=1e-6, rtol=1e-4)
  for name in stepped:
    # The step's change of every parameter (the parameters themselves are ~1e4 x larger than it).
    before = jax.tree.map(np.asarray, state[name].params)
    torch_delta = jax.tree.map(lambda a, b: a - b, _torch_tree(nets[name], "params"), before)
    lle_delta = jax.tree.map(lambda a, b: np.asarray(a) - b, stepped[name].params, before)
    _assert_trees_close(f"{name} parameter update", torch_delta, lle_delta, atol_scale=1e-3, rtol=1e-3)
    # lle keeps the biased running variance, torch the unbiased one: compare the means, and the variances
    # to 1e-2 (n / (n - 1) with n = batch x height x width >= 4 x 4 x 4 here).
    torch_stats, lle_stats = _torch_tree(nets[name], "stats"), stepped[name].batch_stats
    for layer in lle_stats:
      common.assert_close(f"{name} {layer} running mean", torch_stats[layer]["mean"], lle_stats[layer]["mean"],
                          atol=1e-6, rtol=1e-4)
      common.assert_close(f"{name} {layer} running var", torch_stats[layer]["var"], lle_stats[layer]["var"],
                          atol=1e-6, rtol=2e-2)

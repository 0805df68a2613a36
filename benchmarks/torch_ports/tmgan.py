"""PyTorch tmgan (lle.nn.tmgan, lle.methods.tmgan): a U-Net on CIELAB lightness with reflection padding and
instance norm, a conditional PatchGAN trained LSGAN-style, a frozen VGG-19 feature loss on the lightness,
and Adam on a cyclic learning rate; one generator step, then one discriminator step on the updated
generator's output."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from torch_ports import common

# IEC 61966-2-1 decoding and the Y row of sRGB -> XYZ (lle.color), divided by D65's Y (1.0).
_Y_FROM_RGB = (0.212671, 0.715160, 0.072169)
_LAB_EPSILON = 0.008856
_LAB_KAPPA = 7.787


def lightness(rgb):
  """NCHW sRGB -> CIELAB L / 100 [N, 1, H, W] (lle.methods.tmgan.lightness; a and b are never used)."""
  x = rgb.clamp(0.0, 1.0)
  linear = torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)
  y = _Y_FROM_RGB[0] * linear[:, 0:1] + _Y_FROM_RGB[1] * linear[:, 1:2] + _Y_FROM_RGB[2] * linear[:, 2:3]
  f = torch.where(y > _LAB_EPSILON, y.clamp(min=_LAB_EPSILON) ** (1.0 / 3.0), _LAB_KAPPA * y + 16.0 / 116.0)
  return (116.0 * f - 16.0) / 100.0


def tanh_to_lightness(t, mapping):
  if mapping == "affine":
    return 0.5 * (t + 1.0)
  if mapping == "positive":
    return torch.clamp(t, min=0.0)
  raise ValueError(f"unknown generator.tanh_to_lightness {mapping!r}")


def _reflect_conv(c_in, c_out, k, stride):
  # jnp.pad(mode='reflect') of (k - 1) / 2 then a VALID conv: torch's reflect padding mode is the same
  return torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2, padding_mode="reflect")


def _upsample(x, method):
  if method == "nearest":
    return F.interpolate(x, scale_factor=2, mode="nearest")
  if method == "bilinear":
    # jax.image.resize 'bilinear' upsampling: half-pixel centres, edge weights renormalised = clamped
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
  raise ValueError(f"unknown upsampling {method!r}")


class LightnessUNet(torch.nn.Module):

  def __init__(self, g):
    super().__init__()
    f, k = list(g.features), g.kernel_size
    self.slope, self.upsampling, self.multiple = g.negative_slope, g.upsampling, 2 ** len(f)
    norm = lambda c: torch.nn.InstanceNorm2d(c, eps=g.norm_epsilon, affine=True)
    self.down = torch.nn.ModuleList(_reflect_conv(a, b, k, 2) for a, b in zip([1] + f[:-1], f))
    self.down_norms = torch.nn.ModuleList(norm(c) for c in f)
    skips = f[-2::-1]  # the widths the up blocks are concatenated with, deepest first
    ins = [f[-1]] + [2 * s for s in skips[:-1]]
    self.up = torch.nn.ModuleList(_reflect_conv(a, b, k, 1) for a, b in zip(ins, skips))
    self.up_norms = torch.nn.ModuleList(norm(c) for c in skips)
    self.out = _reflect_conv(2 * f[0] if len(f) > 1 else f[0], 1, k, 1)

  def forward(self, x):
    if x.shape[2] % self.multiple or x.shape[3] % self.multiple:
      raise ValueError(f"LightnessUNet input {x.shape[2]}x{x.shape[3]} must divide by {self.multiple}")
    skips = []
    for conv, norm in zip(self.down, self.down_norms):
      x = F.leaky_relu(norm(conv(x)), self.slope)
      skips.append(x)
    for conv, norm, skip in zip(self.up, self.up_norms, skips[-2::-1]):
      x = F.leaky_relu(norm(conv(_upsample(x, self.upsampling))), self.slope)
      x = torch.cat([x, skip], dim=1)
    return torch.tanh(self.out(_upsample(x, self.upsampling)))


class PatchDiscriminator(torch.nn.Module):

  def __init__(self, d):
    super().__init__()
    f, k = list(d.features), d.kernel_size
    self.slope = d.negative_slope
    self.convs = torch.nn.ModuleList(
        _reflect_conv(a, b, k, 2) for a, b in zip([2 if d.conditional else 1] + f[:-1], f))
    # pix2pix leaves the first layer unnormalised
    self.norms = torch.nn.ModuleList(torch.nn.InstanceNorm2d(c, eps=d.norm_epsilon, affine=True) for c in f[1:])
    self.out = _reflect_conv(f[-1], 1, k, 1)

  def forward(self, x):
    for i, conv in enumerate(self.convs):
      x = conv(x)
      if i > 0:
        x = self.norms[i - 1](x)
      x = F.leaky_relu(x, self.slope)
    return self.out(x)[:, 0]


def _conv_weight(hwio):
  return torch.from_numpy(np.asarray(hwio).transpose(3, 2, 0, 1).copy())


class FrozenVGG(torch.nn.Module):
  """The VGG up to the loss's layer (3x3 convs with zero padding 1, ReLU, 2x2 VALID max pools), with the
  weights' preprocessing in front, on grey images. Weights are buffers: frozen, and not counted as
  parameters (lle keeps them in a plain dict beside the NetStates)."""

  def __init__(self, config):
    super().__init__()
    from lle import weights
    from lle.nn import vgg
    from lle.methods import tmgan
    p = config.loss.perceptual
    names = vgg.layer_names(p.depth)
    self.names = names[:names.index(tmgan._vgg_layer(config)) + 1]
    # The weights lle's init reads (load_from_lle copies them again from the state).
    params, _, _ = weights.load(p.weights)
    for name in self.names:
      if name.startswith("conv"):
        self.register_buffer(f"{name}_weight", _conv_weight(params[name]["kernel"]))
        self.register_buffer(f"{name}_bias", torch.from_numpy(np.array(params[name]["bias"])))
    pre = weights.preprocess_of(p.weights)
    self.scale = float(pre.scale)
    self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
    self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

  def forward(self, grey01):
    # lle.losses.perceptual repeats a grey batch to 3 channels; RGB or BGR order is then the same image
    x = (grey01 * self.scale - self.mean) / self.std
    return common.run_vgg_layers(x, self, self.names)


def build(config):
  nets = {"gen": LightnessUNet(config.generator), "disc": PatchDiscriminator(config.discriminator)}
  if config.loss.perceptual_weight:
    nets["vgg"] = FrozenVGG(config)
  return torch.nn.ModuleDict(nets)


def _layers(module, state):
  """(name, torch layer, lle's param dict) for every parameterised layer: Flax numbers Conv_i and
  InstanceNorm_j separately, each in creation order."""
  def of(tree, prefix):
    return common.numbered({k: v for k, v in tree.items() if k.startswith(prefix)})

  out = []
  for net, convs, norms in (
      ("gen", [*module["gen"].down, *module["gen"].up, module["gen"].out],
       [*module["gen"].down_norms, *module["gen"].up_norms]),
      ("disc", [*module["disc"].convs, module["disc"].out], list(module["disc"].norms))):
    params = state[net].params
    for kind, layers in (("Conv", convs), ("InstanceNorm", norms)):
      flax_layers = of(params, kind + "_")
      if len(flax_layers) != len(layers):
        raise AssertionError(f"{net}: lle has {len(flax_layers)} {kind} layers, the torch network {len(layers)}")
      out += [(f"{net} {kind}_{i}", layer, p) for i, (layer, p) in enumerate(zip(layers, flax_layers))]
  return out


def _tensors(layer, flax_layer):
  """(torch tensor, lle array, transpose of the torch tensor to lle's layout) pairs of one layer."""
  if isinstance(layer, torch.nn.Conv2d):
    return [(layer.weight, flax_layer["kernel"], (2, 3, 1, 0)), (layer.bias, flax_layer["bias"], None)]
  return [(layer.weight, flax_layer["scale"], None), (layer.bias, flax_layer["bias"], None)]


def load_from_lle(module, state):
  with torch.no_grad():
    for _, layer, flax_layer in _layers(module, state):
      for tensor, value, perm in _tensors(layer, flax_layer):
        value = np.asarray(value)
        tensor.copy_(torch.from_numpy((value.transpose(np.argsort(perm)) if perm else value).copy()))
    if "vgg" in module:
      vgg = module["vgg"]
      for name, layer in state["vgg"].items():
        getattr(vgg, f"{name}_weight").copy_(_conv_weight(layer["kernel"]))
        getattr(vgg, f"{name}_bias").copy_(torch.from_numpy(np.array(layer["bias"])))


def learning_rate(opt_config):
  """lle.optim.schedule's 'constant' and 'cyclic' rates as a plain Python function of the step: no JAX in the
  torch process (its first computation would claim a GPU's memory). check_equal compares it with lle's."""
  o = opt_config
  if o.schedule == "constant":
    return lambda step: o.learning_rate
  if o.schedule != "cyclic":
    raise NotImplementedError(f"tmgan's torch port has the constant and cyclic schedules, not {o.schedule!r}")
  peak, n, mult, low = o.learning_rate, o.cycle_steps, o.cycle_mult, o.cycle_min_fraction

  def start_of(k):
    return k * n if mult == 1.0 else n * (mult**k - 1.0) / (mult - 1.0)

  def rate(step):
    t = float(step)
    if mult == 1.0:
      k = math.floor(t / n)
    else:
      k = math.floor(math.log1p(t / n * (mult - 1.0)) / math.log(mult))
      k = k + 1 if start_of(k + 1) <= t else k
      k = k - 1 if start_of(k) > t else k
    u = (t - start_of(k)) / (n * mult**k)
    top = peak * o.decay_factor**k
    floor = low * top
    if o.cycle_shape == "triangular":
      return floor + (top - floor) * (1.0 - abs(2.0 * u - 1.0))
    if o.cycle_shape == "cosine":
      return floor + (top - floor) * 0.5 * (1.0 + math.cos(math.pi * u))
    if o.cycle_shape == "exponential":
      return top * low**u
    if o.cycle_shape == "sawtooth":
      return top - (top - floor) * u
    raise ValueError(f"unknown optimizer.cycle_shape {o.cycle_shape!r}")

  return rate


class _Trainer:
  """lle.methods.tmgan.train_step in torch: every loss term and score comes back for check_equal."""

  def __init__(self, config, module, use_compile):
    self.config = config
    wrap = (lambda m: torch.compile(m, dynamic=False)) if use_compile else (lambda m: m)
    self.gen, self.disc = wrap(module["gen"]), wrap(module["disc"])
    self.vgg = wrap(module["vgg"]) if "vgg" in module else None
    self.disc_params = list(module["disc"].parameters())
    o = config.optimizer
    if o.name != "adam":
      raise NotImplementedError(f"tmgan's torch port has Adam only, not {o.name!r}")
    # optax.adam with eps_root 0 is torch's Adam (the same bias corrections, eps outside the square root)
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=0.0, betas=(o.b1, o.b2), eps=o.eps)
    self.g_opt, self.d_opt = adam(module["gen"]), adam(module["disc"])
    self.lr = learning_rate(o)
    self.step = 0

  def _d_input(self, light_in, light):
    return torch.cat([light_in, light], dim=1) if self.config.discriminator.conditional else light

  def _set_d_trainable(self, flag):
    # The generator's backward needs gradients through D to its input only, as jax.grad over G's params
    for p in self.disc_params:
      p.requires_grad_(flag)

  def __call__(self, batch):
    lc, mapping = self.config.loss, self.config.generator.tanh_to_lightness
    lr = self.lr(self.step)
    self.step += 1
    light_in, light_target = lightness(batch["input"]), lightness(batch["target"])
    real_in = self._d_input(light_in, light_target)

    self._set_d_trainable(False)
    self.g_opt.zero_grad(set_to_none=True)
    light = tanh_to_lightness(self.gen(light_in), mapping)
    mse = torch.mean(torch.square(light - light_target))
    adv = torch.mean(torch.square(self.disc(self._d_input(light_in, light)) - 1.0))
    g_loss = lc.mse_weight * mse + lc.adversarial_weight * adv
    out = {"mse": mse, "g_adversarial": adv}
    if self.vgg is not None:
      with torch.no_grad():
        target_features = self.vgg(light_target)
      out["perceptual"] = torch.mean(torch.square(self.vgg(light) - target_features))
      g_loss = g_loss + lc.perceptual_weight * out["perceptual"]
    g_loss.backward()
    for group in self.g_opt.param_groups:
      group["lr"] = lr
    self.g_opt.step()
    self._set_d_trainable(True)

    with torch.no_grad():
      fake = tanh_to_lightness(self.gen(light_in), mapping)
    fake_in = self._d_input(light_in, fake)
    self.d_opt.zero_grad(set_to_none=True)
    d_real, d_fake = self.disc(real_in), self.disc(fake_in)
    d_loss = 0.5 * (torch.mean(torch.square(d_real - 1.0)) + torch.mean(torch.square(d_fake + 1.0)))
    d_loss.backward()
    for group in self.d_opt.param_groups:
      group["lr"] = lr
    self.d_opt.step()
    out.update(g_loss=g_loss, d_loss=d_loss, d_score_real=d_real.mean(), d_score_fake=d_fake.mean(),
               learning_rate=lr)
    return out


def make_step(config, module, *, use_compile):
  trainer = _Trainer(config, module, use_compile)
  return lambda batch: trainer(batch)["g_loss"].detach()


def batch(config, rng):
  size = config.data.crop_size
  return {k: rng.random((config.batch_size, size, size, 3), np.float32) for k in ("input", "target")}


def _adam_gradients(net_state):
  """The gradient of lle's first train step, read back from its Adam state: mu = (1 - b1) g after one step."""
  adam = next(s for s in net_state.opt_state if hasattr(s, "mu"))
  return adam.mu


def _check(config, lle_method, state, module, label):
  from lle.methods import tmgan
  n = max(len(config.generator.features), len(config.discriminator.features))
  size = max(32, 2 ** (n + 1))  # every instance norm sees at least 2 x 2 pixels
  rng = np.random.default_rng(0)
  x, target = rng.random((2, 2, size, size, 3), np.float32)
  x = x * 0.3  # darker inputs: the lightness's linear branch near black is exercised too
  gen = state["gen"]
  with jax.default_matmul_precision("highest"):
    light_in = tmgan.lightness(jnp.asarray(x))
    out = gen.apply_fn({"params": gen.params}, light_in)
    new_state, metrics = jax.jit(lle_method.train_step)(state, {"input": x, "target": target}, jax.random.key(0))

  where = lambda name: f"{label}: {name}"
  torch_light = lightness(common.to_nchw(x))
  common.assert_close(where("input lightness"), common.to_nhwc(torch_light), light_in, atol=1e-6, rtol=1e-5)
  with torch.no_grad():
    torch_out = module["gen"](torch_light)
  common.assert_close(where("generator output"), common.to_nhwc(torch_out), out, atol=1e-5, rtol=1e-4)

  layers = _layers(module, state)
  torch_metrics = _Trainer(config, module, use_compile=False)(
      {"input": common.to_nchw(x), "target": common.to_nchw(target)})
  if set(torch_metrics) != set(metrics):
    raise AssertionError(f"{label}: torch has metrics {sorted(torch_metrics)}, lle {sorted(metrics)}")
  for name, value in torch_metrics.items():
    common.assert_close(where(name), value, metrics[name], atol=1e-7, rtol=1e-5)

  grads = {net: _adam_gradients(new_state[net]) for net in ("gen", "disc")}
  b1 = config.optimizer.b1
  # Tolerances relative to each network's largest gradient: conv biases under instance norm have none
  # in exact arithmetic, so theirs is rounding noise in both frameworks.
  scales = {net: max(float(jnp.abs(g).max()) for g in jax.tree.leaves(tree)) / (1.0 - b1)
            for net, tree in grads.items()}
  for name, layer, _ in layers:
    net, key = name.split()
    lle_grads, lle_new = grads[net][key], new_state[net].params[key]
    for (tensor, grad, perm), (_, new, _) in zip(_tensors(layer, lle_grads), _tensors(layer, lle_new)):
      to_lle = (lambda t: t.detach().numpy().transpose(perm)) if perm else (lambda t: t.detach().numpy())
      grad = np.asarray(grad) / (1.0 - b1)
      scale = scales[net]
      common.assert_close(where(f"{name} gradient {tuple(grad.shape)}"), to_lle(tensor.grad), grad,
                          atol=1e-5 * scale, rtol=1e-3)
      # Adam's first update is lr g / (|g| + eps): where g is (near) rounding noise its sign is arbitrary,
      # and there both moved by at most lr.
      mask = np.abs(grad) > 1e-3 * scale
      new, lr = np.asarray(new), float(metrics["learning_rate"])
      common.assert_close(where(f"{name} after one step"), to_lle(tensor)[mask], new[mask], atol=1e-6, rtol=1e-5)
      common.assert_close(where(f"{name} after one step (g ~ 0)"), to_lle(tensor)[~mask], new[~mask],
                          atol=2.0 * lr + 1e-6, rtol=0)


def check_equal(config, lle_method, state, module):
  """The config as given, then (where VGG weights are installed) the same networks with the paper's VGG
  loss, bilinear upsampling, the 'positive' lightness mapping and the other discriminator conditioning."""
  from lle import methods, optim
  schedules = [config.optimizer]
  for shape in optim.CYCLE_SHAPES:
    for mult in (1.0, 1.5):
      o = config.optimizer.copy_and_resolve_references()
      o.schedule, o.cycle_shape, o.cycle_mult, o.cycle_steps, o.cycle_min_fraction = "cyclic", shape, mult, 7, 0.1
      schedules.append(o)
  for o in schedules:
    steps = np.arange(200)
    common.assert_close(f"learning rate ({o.schedule}, {o.get('cycle_shape')}, x{o.get('cycle_mult')})",
                        np.array([learning_rate(o)(int(i)) for i in steps]), optim.schedule(o)(jnp.asarray(steps)),
                        atol=1e-6 * o.learning_rate, rtol=1e-5)
  _check(config, lle_method, state, module, "as configured")
  other = config.copy_and_resolve_references()
  other.loss.perceptual_weight = 1.0 / 12.75**2
  other.generator.upsampling = "bilinear"
  other.generator.tanh_to_lightness = "positive"
  other.discriminator.conditional = not config.discriminator.conditional
  other_method = methods.get(other)
  try:
    other_state = jax.jit(other_method.init)(jax.random.key(1))
    other_module = build(other)
  except FileNotFoundError as e:
    print(f"tmgan: VGG loss not checked ({e})", flush=True)
    return
  # Flax's zero conv biases would put an unconditional D's first LeakyReLU exactly at 0 on the 'positive'
  # mapping's all-black patches, where JAX's subgradient (1) and torch's (the slope) differ: shift them.
  disc = other_state["disc"]
  keys = iter(jax.random.split(jax.random.key(2), len(disc.params)))
  other_state["disc"] = disc.replace(params={
      k: dict(v, bias=v["bias"] + 0.05 * jax.random.normal(next(keys), v["bias"].shape)) if k.startswith("Conv_")
      else v for k, v in disc.params.items()})
  lle_count = sum(common.parameter_count(s.params) for s in other_state.values() if hasattr(s, "params"))
  torch_count = sum(p.numel() for p in other_module.parameters())
  assert lle_count == torch_count, f"tmgan with VGG loss: lle has {lle_count:,} parameters, torch {torch_count:,}"
  load_from_lle(other_module, other_state)
  _check(other, other_method, other_state, other_module, "VGG loss, bilinear, positive")

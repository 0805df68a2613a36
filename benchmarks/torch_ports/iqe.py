"""PyTorch IQE / DPED (lle.nn.iqe, lle.methods.iqe): residual generator, grey-image discriminator, content
(frozen VGG-19) + texture + colour (blurred) + total-variation losses, one generator then one discriminator
Adam step per iteration.

jax is imported only inside the functions that compare with lle, so that the timed torch rows do not load
it; the VGG-19 weights are read from lle's weights folder directly (params.npz + meta.json).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from torch_ports import common

GREY = (0.2989, 0.5870, 0.1140)  # TensorFlow's rgb_to_grayscale, as lle.losses.rgb_to_grey
VGG19_CONVS = (2, 2, 4, 4, 4)
VGG_WIDTHS = (64, 128, 256, 512, 512)


# --- initialisation (only matters for the timed rows; check_equal copies lle's weights) ---------------

def _init_weight(weight, name):
  """lle.nn.iqe.init_fn's initialisers, with torch's fan computation (in * k * k for convolutions)."""
  with torch.no_grad():
    if name.startswith("truncated_normal_"):  # cut at 2 std, std not rescaled (jax's truncated_normal)
      std = float(name.rsplit("_", 1)[1])
      torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
    elif name.startswith("normal_"):
      torch.nn.init.normal_(weight, std=float(name.split("_", 1)[1]))
    elif name == "glorot_uniform":
      torch.nn.init.xavier_uniform_(weight)
    elif name == "he_gaussian":
      torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")
    elif name in ("he_normal", "lecun_normal"):  # variance scaling, truncated normal at 2 std, rescaled
      fan_in = torch.nn.init._calculate_fan_in_and_fan_out(weight)[0]
      std = math.sqrt((2.0 if name == "he_normal" else 1.0) / fan_in) / 0.87962566103423978
      torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
    else:
      raise ValueError(f"unknown initializer {name!r}")


def _init_layer(layer, kernel_init, bias_init):
  _init_weight(layer.weight, kernel_init)
  torch.nn.init.constant_(layer.bias, bias_init)


def _conv(cin, cout, k, stride=1):
  """A convolution with Flax's 'SAME' padding: torch's own symmetric padding where it is the same (odd
  kernel, stride 1), an explicit pad otherwise (asymmetric for even kernels and strides)."""
  if stride == 1 and k % 2:
    return torch.nn.Conv2d(cin, cout, k, padding=k // 2)
  return common.SameConv2d(cin, cout, k, stride=stride)


# --- norms ------------------------------------------------------------------------------------------

class InstanceNorm(torch.nn.Module):
  """Per image and channel over H, W, biased variance, learnable scale and shift (lle.nn.iqe.InstanceNorm)."""

  def __init__(self, features, eps):
    super().__init__()
    self.eps = eps
    self.weight = torch.nn.Parameter(torch.ones(features))
    self.bias = torch.nn.Parameter(torch.zeros(features))

  def forward(self, x, update_stats=True):
    del update_stats  # no running statistics
    return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class BatchNorm(torch.nn.BatchNorm2d):
  """Flax BatchNorm (momentum m -> torch momentum 1 - m). `update_stats=False` normalises by the batch
  without touching the running averages: lle applies D inside the generator's loss, and G again for D's
  step, in training mode and discards those statistic updates."""

  def __init__(self, features, eps, flax_momentum):
    super().__init__(features, eps=eps, momentum=1.0 - flax_momentum)

  def forward(self, x, update_stats=True):
    if self.training and not update_stats:
      return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
    return super().forward(x)


def _norm(kind, features, eps, momentum):
  if kind == "instance":
    return InstanceNorm(features, eps)
  if kind == "batch":
    return BatchNorm(features, eps, momentum)
  raise ValueError(f"unknown norm {kind!r}")


# --- networks ---------------------------------------------------------------------------------------

class Generator(torch.nn.Module):
  """conv 9x9 + ReLU; residual blocks of 2 x [conv 3x3 -> norm -> ReLU] (+ the block's input); 2 x conv 3x3
  + ReLU; conv 9x9 -> 3; tanh * scale + offset. convs[j] is lle's W{j+1}, norms[j] its norm{j+2}."""

  def __init__(self, g):
    super().__init__()
    self.g = g
    f = g.features
    convs = [_conv(3, f, 9)] + [_conv(f, f, 3) for _ in range(2 * g.num_blocks + 2)] + [_conv(f, 3, 9)]
    self.convs = torch.nn.ModuleList(convs)
    self.norms = torch.nn.ModuleList(
        [_norm(g.norm, f, g.norm_epsilon, g.bn_momentum) for _ in range(2 * g.num_blocks)])
    for c in self.convs:
      _init_layer(c, g.kernel_init, g.bias_init)

  def layers(self):
    return ([(f"W{j + 1}", c, "conv") for j, c in enumerate(self.convs)]
            + [(f"norm{j + 2}", n, self.g.norm) for j, n in enumerate(self.norms)])

  def forward(self, x, update_stats=True):
    h = F.relu(self.convs[0](x))
    for b in range(self.g.num_blocks):
      skip = h
      h = F.relu(self.norms[2 * b](self.convs[2 * b + 1](h), update_stats))
      h = F.relu(self.norms[2 * b + 1](self.convs[2 * b + 2](h), update_stats)) + skip
    n = 2 * self.g.num_blocks
    h = F.relu(self.convs[n + 1](h))
    h = F.relu(self.convs[n + 2](h))
    return torch.tanh(self.convs[n + 3](h)) * self.g.output_scale + self.g.output_offset


class Discriminator(torch.nn.Module):
  """Grey patches: conv -> LeakyReLU -> norm (none after the first), flatten, FC + LeakyReLU, FC 2. Flax
  flattens NHWC as (h, w, c); this flattens NCHW as (c, h, w) and the FC weight's columns are permuted to
  match when lle's weights are copied in (`_to_torch_layout`)."""

  def __init__(self, d, crop_size):
    super().__init__()
    self.d = d
    widths = (1,) + tuple(d.conv_features)
    self.convs = torch.nn.ModuleList([_conv(a, b, k, s) for a, b, k, s
                                      in zip(widths, widths[1:], d.kernel_sizes, d.strides)])
    self.norms = torch.nn.ModuleList([_norm(d.norm, f, d.norm_epsilon, d.bn_momentum)
                                      for f in d.conv_features[1:]])
    n = crop_size
    for s in d.strides:
      n = -(-n // s)  # 'SAME': ceil(n / s)
    self.flat_shape = (n, n, d.conv_features[-1])  # (h, w, c) of the flattened features
    self.fc = torch.nn.Linear(n * n * d.conv_features[-1], d.fc_features)
    self.out = torch.nn.Linear(d.fc_features, 2)
    for layer in list(self.convs) + [self.fc, self.out]:
      _init_layer(layer, d.kernel_init, d.bias_init)

  def layers(self):
    return ([(f"conv{j + 1}", c, "conv") for j, c in enumerate(self.convs)]
            + [(f"norm{j + 2}", n, self.d.norm) for j, n in enumerate(self.norms)]
            + [("fc", self.fc, "dense_flat"), ("out", self.out, "dense")])

  def forward(self, x, update_stats=True):
    slope = self.d.negative_slope
    x = F.leaky_relu(self.convs[0](x), slope)
    for conv, norm in zip(self.convs[1:], self.norms):
      x = norm(F.leaky_relu(conv(x), slope), update_stats)
    x = F.leaky_relu(self.fc(torch.flatten(x, 1)), slope)
    return self.out(x)


def _vgg_layers(last):
  names = []
  for block, convs in enumerate(VGG19_CONVS, start=1):
    for i in range(1, convs + 1):
      names += [f"conv{block}_{i}", f"relu{block}_{i}"]
    names.append(f"pool{block}")
  if last not in names:
    raise ValueError(f"VGG-19 has no layer {last!r}")
  return names[:names.index(last) + 1]


class VGGFeatures(torch.nn.Module):
  """VGG-19 up to `layer` on [0, 1] RGB images, with the weights' preprocessing (lle.weights.Preprocess) and
  lle.nn.vgg's layers: 3x3 convolutions with padding 1, 2x2 max pools whose 'SAME' padding (odd sizes
  rounded up) is torch's ceil_mode. The weights are buffers: frozen, and not counted as parameters."""

  def __init__(self, layer, pool_padding, preprocess):
    super().__init__()
    self.names = _vgg_layers(layer)
    if pool_padding not in ("SAME", "VALID"):
      raise ValueError(f"unknown pool padding {pool_padding!r}")
    self.ceil_mode = pool_padding == "SAME"
    cin = 3
    for name in self.names:
      if name.startswith("conv"):
        width = VGG_WIDTHS[int(name[4]) - 1]
        self.register_buffer(f"{name}_weight", torch.zeros(width, cin, 3, 3))
        self.register_buffer(f"{name}_bias", torch.zeros(width))
        cin = width
    self.bgr = bool(preprocess["bgr"])
    std = torch.tensor(preprocess["std"], dtype=torch.float32).view(1, 3, 1, 1)
    self.register_buffer("scale", float(preprocess["scale"]) / std)
    self.register_buffer("offset", torch.tensor(preprocess["mean"], dtype=torch.float32).view(1, 3, 1, 1) / std)

  def load(self, convs):
    """{conv name: {'kernel' HWIO, 'bias'}} (lle's format) into the buffers."""
    with torch.no_grad():
      for name in self.names:
        if name.startswith("conv"):
          getattr(self, f"{name}_weight").copy_(
              torch.from_numpy(np.asarray(convs[name]["kernel"], np.float32).transpose(3, 2, 0, 1).copy()))
          getattr(self, f"{name}_bias").copy_(torch.from_numpy(np.array(convs[name]["bias"], np.float32)))

  def forward(self, x):
    if self.bgr:
      x = x.flip(1)
    x = x * self.scale - self.offset  # (x * scale - mean) / std
    return common.run_vgg_layers(x, self, self.names, ceil_mode=self.ceil_mode)


def _read_vgg(name):
  """lle.weights' converted weights `name` from $LLE_WEIGHTS_DIR (default ~/.cache/lle/weights)."""
  root = os.environ.get("LLE_WEIGHTS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "lle", "weights")
  folder = os.path.join(root, name)
  if not os.path.exists(os.path.join(folder, "meta.json")):
    raise FileNotFoundError(f"VGG weights {name!r} not found in {folder} (set $LLE_WEIGHTS_DIR; "
                            "python -m lle.weights vgg19 --from FILE, or the benchmark's --vgg_weights=random)")
  with open(os.path.join(folder, "meta.json")) as f:
    meta = json.load(f)
  if meta["depth"] != 19:
    raise ValueError(f"{name}: a VGG-{meta['depth']}; the content loss needs VGG-19")
  convs = {}
  with np.load(os.path.join(folder, "params.npz")) as arrays:
    for key in arrays.files:
      conv, leaf = key.split("/")
      convs.setdefault(conv, {})[leaf] = arrays[key]
  return convs, meta["preprocess"]


def uses_vgg(config):
  return config.loss.content_weight != 0


def build(config):
  nets = {"gen": Generator(config.generator), "disc": Discriminator(config.discriminator, config.data.crop_size)}
  if uses_vgg(config):
    lc = config.loss
    convs, preprocess = _read_vgg(lc.vgg_weights)
    nets["vgg"] = VGGFeatures(lc.content_layer, lc.vgg_pool_padding, preprocess)
    nets["vgg"].load(convs)
  return torch.nn.ModuleDict(nets)


# --- weights from lle -------------------------------------------------------------------------------

def _to_torch_layout(kind, leaf, value, flat_shape=None):
  value = np.asarray(value, np.float32)
  if leaf == "kernel" and kind == "conv":
    return value.transpose(3, 2, 0, 1)
  if leaf == "kernel" and kind == "dense":
    return value.T
  if leaf == "kernel" and kind == "dense_flat":  # rows in (h, w, c) order -> columns in (c, h, w) order
    h, w, c = flat_shape
    return value.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(value.shape[1], -1)
  return value


_LEAVES = {"conv": (("weight", "kernel"), ("bias", "bias")), "dense": (("weight", "kernel"), ("bias", "bias")),
           "dense_flat": (("weight", "kernel"), ("bias", "bias")),
           "instance": (("weight", "scale"), ("bias", "shift")), "batch": (("weight", "scale"), ("bias", "bias"))}


def _pairs(net, tree):
  """(label, torch parameter, the matching leaf of a Flax params-shaped tree in torch's layout) for every
  parameter of a Generator / Discriminator: used for copying weights and comparing gradients."""
  flat_shape = getattr(net, "flat_shape", None)
  return [(f"{name}/{leaf}", getattr(module, attr), _to_torch_layout(kind, leaf, tree[name][leaf], flat_shape))
          for name, module, kind in net.layers() for attr, leaf in _LEAVES[kind]]


def _stat_pairs(net, stats):
  return [(f"{name}/{leaf}", getattr(module, attr), np.asarray(stats[name][leaf], np.float32))
          for name, module, kind in net.layers() if kind == "batch"
          for attr, leaf in (("running_mean", "mean"), ("running_var", "var"))]


def load_from_lle(module, state):
  with torch.no_grad():
    for name in ("gen", "disc"):
      net = module[name]
      pairs = _pairs(net, state[name].params) + _stat_pairs(net, state[name].batch_stats)
      if len(pairs) != len(list(net.parameters())) + 2 * sum(isinstance(m, BatchNorm) for m in net.modules()):
        raise AssertionError(f"{name}: the torch network's parameters do not all have an lle counterpart")
      for label, tensor, value in pairs:
        if tuple(tensor.shape) != value.shape:
          raise AssertionError(f"{name} {label}: torch {tuple(tensor.shape)}, lle {value.shape}")
        tensor.copy_(torch.from_numpy(np.array(value)))
  if "vgg" in state:
    module["vgg"].load(state["vgg"])


# --- losses (NCHW; lle.losses' forms) ------------------------------------------------------------------

def color_kernel(form, size, sigma):
  """lle.losses.color_kernel: 'dped' is DPED's gauss_kernel (sqrt of the outer product of N(0, 1) bin
  masses), 'paper' Adlakha et al.'s exp(-(k^2 + l^2) / (2 sigma)); both normalised to sum 1."""
  if form == "dped":
    interval = (2 * sigma + 1.0) / size
    edges = np.linspace(-sigma - interval / 2.0, sigma + interval / 2.0, size + 1)
    cdf = np.array([0.5 * (1.0 + math.erf(e / math.sqrt(2.0))) for e in edges])
    kern1d = np.diff(cdf)
    kernel = np.sqrt(np.outer(kern1d, kern1d))
  elif form == "paper":
    k = np.arange(size) - size // 2
    kernel = np.exp(-(k[:, None] ** 2) / (2 * sigma) - (k[None, :] ** 2) / (2 * sigma))
  else:
    raise ValueError(f"unknown colour kernel {form!r}")
  return (kernel / kernel.sum()).astype(np.float32)


def _grey(x):
  return torch.sum(x * x.new_tensor(GREY).view(1, 3, 1, 1), dim=1, keepdim=True)


def _blur(x, kernel):
  """Depthwise convolution of each channel with `kernel` [k, k], zero 'SAME' padding."""
  c, k = x.shape[1], kernel.shape[-1]
  weight = kernel.view(1, 1, k, k).expand(c, 1, k, k)
  if k % 2:
    return F.conv2d(x, weight, padding=k // 2, groups=c)
  return F.conv2d(common.same_pad(x, k), weight, groups=c)


def _color_loss(pred, target, kernel, sum_scale):
  diff = _blur(pred, kernel) - _blur(target, kernel)
  return torch.sum(torch.square(diff)) * sum_scale / pred.shape[0]


def _total_variation(x, form):
  dx, dy = x[:, :, :, 1:] - x[:, :, :, :-1], x[:, :, 1:] - x[:, :, :-1]
  if form == "dped":
    return torch.mean(torch.square(dx)) + torch.mean(torch.square(dy))
  if form == "paper":
    both = dx[:, :, :-1] + dy[:, :, :, :-1]
    norm = torch.sqrt(torch.sum(torch.square(both), dim=(1, 2, 3)) + 1e-12)
    return torch.mean(norm / (x.shape[1] * x.shape[2] * x.shape[3]))
  raise ValueError(f"unknown total-variation form {form!r}")


def _probs(logits):
  return torch.clamp(torch.softmax(logits, dim=-1), 1e-10, 1.0)


def _texture_loss(logits, form):
  if form == "dped":
    return torch.sum(torch.log(_probs(logits)[:, 1]))
  if form == "paper":
    return -torch.sum(torch.log(_probs(logits)[:, 0]))
  raise ValueError(f"unknown texture form {form!r}")


def _dped_cross_entropy(logits, is_target_photo):
  onehot = torch.stack([is_target_photo, 1.0 - is_target_photo], dim=-1)
  return -torch.sum(onehot * torch.log(_probs(logits)))


def _content_loss(pred, target, vgg, distance):
  fp = vgg(pred)
  with torch.no_grad():  # the target's features need no backward pass
    ft = vgg(target)
  if distance == "mse":
    return torch.mean(torch.square(fp - ft))
  if distance == "l2_over_chw":
    per_image = torch.sqrt(torch.sum(torch.square(fp - ft), dim=(1, 2, 3)) + 1e-12)
    return torch.mean(per_image / (fp.shape[1] * fp.shape[2] * fp.shape[3]))
  raise ValueError(f"unknown perceptual distance {distance!r}")


# --- train step -------------------------------------------------------------------------------------

def _optimizer(config, params):
  o = config.optimizer
  if o.schedule != "constant":
    raise NotImplementedError(f"optimizer.schedule={o.schedule!r}: only 'constant' is ported")
  if o.name == "adam":  # optax.adam: eps outside the square root, bias-corrected as torch's
    return torch.optim.Adam(params, lr=o.learning_rate, betas=(o.b1, o.b2), eps=o.eps)
  if o.name == "rmsprop":
    return torch.optim.RMSprop(params, lr=o.learning_rate, alpha=o.rmsprop_decay, eps=o.eps)
  raise ValueError(f"unknown optimizer {o.name!r}")


def _iteration(config, nets, params, opts, phone, target, swap, kernel):
  """lle.methods.iqe.train_step: a generator step, then a discriminator step on the updated generator's
  output. Each network's gradients are left in its parameters' .grad (check_equal compares them)."""
  lc = config.loss
  gen, disc = nets["gen"], nets["disc"]

  enhanced = gen(phone)
  logits = disc(_grey(enhanced), update_stats=False)  # D in training mode; its statistics untouched
  terms = {"texture": _texture_loss(logits, lc.texture_form),
           "color": _color_loss(enhanced, target, kernel, lc.color_sum_scale),
           "tv": _total_variation(enhanced, lc.tv_form)}
  g_loss = lc.texture_weight * terms["texture"] + lc.color_weight * terms["color"] + lc.tv_weight * terms["tv"]
  if "vgg" in nets:
    terms["content"] = _content_loss(enhanced, target, nets["vgg"], lc.content_distance)
    g_loss = g_loss + lc.content_weight * terms["content"]
  # Gradients for G's parameters only (D's would be computed and thrown away).
  for p, g in zip(params["gen"], torch.autograd.grad(g_loss, params["gen"])):
    p.grad = g
  opts["gen"].step()

  with torch.no_grad():
    enhanced = gen(phone, update_stats=False)  # lle discards this pass's batch statistics
    s = swap.view(-1, 1, 1, 1)
    d_input = _grey(enhanced) * (1.0 - s) + _grey(target) * s
  d_loss = _dped_cross_entropy(disc(d_input), swap)
  for p, g in zip(params["disc"], torch.autograd.grad(d_loss, params["disc"])):
    p.grad = g
  opts["disc"].step()
  return {**terms, "g_loss": g_loss, "d_loss": d_loss}


def _setup(config, module, use_compile):
  device = next(module.parameters()).device
  lc = config.loss
  kernel = torch.from_numpy(color_kernel(lc.color_kernel, lc.color_kernel_size, lc.color_sigma)).to(device)
  wrap = (lambda m: torch.compile(m, dynamic=False)) if use_compile else (lambda m: m)
  nets = {name: wrap(module[name]) for name in module}
  params = {name: list(module[name].parameters()) for name in ("gen", "disc")}
  return nets, params, kernel


def make_step(config, module, *, use_compile):
  """step(batch) -> the generator's loss, after both networks' updates (a fresh D/target swap each call)."""
  module.train()
  nets, params, kernel = _setup(config, module, use_compile)
  opts = {name: _optimizer(config, params[name]) for name in ("gen", "disc")}

  def step(batch):
    phone, target = batch["input"], batch["target"]
    swap = (torch.rand(phone.shape[0], device=phone.device) < 0.5).to(phone.dtype)
    return _iteration(config, nets, params, opts, phone, target, swap, kernel)["g_loss"].detach()

  return step


def batch(config, rng):
  """The training pipeline's batch: input and target crops of crop_size x crop_size, RGB in [0, 1]."""
  size = config.data.crop_size
  return {k: rng.random((config.batch_size, size, size, 3), np.float32) for k in ("input", "target")}


# --- checks against lle -----------------------------------------------------------------------------

def _check_one(config, lle_method, state, module, label):
  """Generator outputs, every loss term, every gradient of both networks, then every parameter and running
  statistic after one whole step of lle's train_step and of `_iteration` (which changes `module`)."""
  import jax
  import jax.numpy as jnp
  import optax
  from lle import losses
  from lle.methods import iqe as lle_iqe

  lc = config.loss
  common.assert_close(f"{label}: colour kernel", color_kernel(lc.color_kernel, lc.color_kernel_size, lc.color_sigma),
                      losses.color_kernel(lc.color_kernel, lc.color_kernel_size, lc.color_sigma), atol=1e-7, rtol=1e-5)
  n, size = config.batch_size, config.data.crop_size
  rng = np.random.default_rng(1)
  x, target = (rng.random((n, size, size, 3), np.float32) for _ in range(2))
  data = {"input": jnp.asarray(x), "target": jnp.asarray(target)}
  # A key whose swap mixes enhanced images and target photos in D's batch (both branches exercised).
  key = next(k for k in (jax.random.key(i) for i in range(100))
             if 0 < int(jnp.sum(jax.random.bernoulli(k, 0.5, (n,)))) < n)
  swap = np.asarray(jax.random.bernoulli(key, 0.5, (n,)), np.float32)

  # lle's own train_step, with each network's optimiser wrapped to also keep the gradients it was given in
  # its state: one step gives the gradients (D's on the updated generator's output) and the new parameters.
  def recording(tx):
    def update(grads, opt_state, params=None):
      updates, inner = tx.update(grads, opt_state[0], params)
      return updates, (inner, grads)
    return optax.GradientTransformation(lambda p: (tx.init(p), jax.tree.map(jnp.zeros_like, p)), update)

  start = {**state, **{k: state[k].replace(tx=recording(state[k].tx),
                                           opt_state=recording(state[k].tx).init(state[k].params))
                       for k in ("gen", "disc")}}
  with jax.default_matmul_precision("highest"):
    out_train, _ = lle_iqe._apply(state["gen"], state["gen"].params, data["input"], train=True)
    out_eval = lle_method.predict(state, data["input"])
    stepped, metrics = jax.jit(lle_method.train_step)(start, data, key)

  tx, tt = common.to_nchw(x), common.to_nchw(target)
  module.train()
  with torch.no_grad():
    common.assert_close(f"{label}: generator output (training mode)",
                        common.to_nhwc(module["gen"](tx, update_stats=False)), out_train, atol=1e-5, rtol=1e-4)
    module.eval()
    common.assert_close(f"{label}: generator output (inference)", common.to_nhwc(module["gen"](tx)), out_eval,
                        atol=1e-5, rtol=1e-4)
    module.train()
  nets, params, kernel = _setup(config, module, use_compile=False)
  opts = {name: _optimizer(config, params[name]) for name in ("gen", "disc")}
  torch_metrics = _iteration(config, nets, params, opts, tx, tt, torch.from_numpy(swap), kernel)
  expected = {"texture", "color", "tv", "g_loss", "d_loss"} | ({"content"} if "vgg" in state else set())
  if expected - set(torch_metrics) or expected - set(metrics):
    raise AssertionError(f"{label}: torch computed {sorted(torch_metrics)}, lle {sorted(metrics)}")
  for name in sorted(expected):
    common.assert_close(f"{label}: {name}", torch_metrics[name], metrics[name], atol=1e-6, rtol=2e-5)

  lr = config.optimizer.learning_rate
  for name in ("gen", "disc"):
    grads = _pairs(module[name], stepped[name].opt_state[1])
    scale = max(float(np.abs(g).max()) for _, _, g in grads)
    atol = {}
    for leaf, p, g in grads:
      # float32 summation orders differ: atol from the tensor's largest gradient, plus a floor from the
      # network's for gradients that are exactly zero in exact arithmetic (a bias followed by a norm with
      # nothing non-linear between them) and so only rounding noise on both sides.
      atol[leaf] = 1e-5 * float(np.abs(g).max()) + 1e-4 * scale
      common.assert_close(f"{label}: {name} {leaf} gradient", p.grad.numpy(), g, atol=atol[leaf], rtol=1e-3)
    for (leaf, p, value), (_, _, g) in zip(_pairs(module[name], stepped[name].params), grads):
      # Adam's first update is lr * g / (|g| + eps), about lr * sign(g): equal unless the two gradients'
      # signs differ, which the check above allows only where |g| is within its tolerance (noise).
      noise = p.grad.abs().numpy() <= atol[leaf] + 1e-3 * np.abs(g)
      err = np.abs(p.detach().numpy() - value)
      bad = err > np.where(noise, 2.02 * lr, lr * 1e-3) + 1e-5 * np.abs(value)
      if bad.any():
        raise AssertionError(f"{label}: {name} {leaf} after one step: torch and lle differ at {int(bad.sum())} "
                             f"of {bad.size} elements, by up to {err[bad].max():.3g}")
    momentum = 1.0 - config[{"gen": "generator", "disc": "discriminator"}[name]].bn_momentum
    for leaf, buf, value in _stat_pairs(module[name], stepped[name].batch_stats):
      torch_value = buf.numpy()
      if leaf.endswith("/var"):  # torch averages the unbiased batch variance, Flax the biased one
        before = state[name].batch_stats[leaf.split("/")[0]]["var"]
        count = _batch_count(name, config, leaf)
        torch_value = (torch_value - (1 - momentum) * before) * (count - 1) / count + (1 - momentum) * before
      common.assert_close(f"{label}: {name} {leaf} after one step", torch_value, value, atol=1e-6, rtol=1e-5)


def _batch_count(name, config, leaf):
  """Elements per channel (N H W) that a batch norm's running average was updated from in the step."""
  n, size = config.batch_size, config.data.crop_size
  if name == "gen":
    return n * size * size
  d = config.discriminator
  i = int(leaf.split("/")[0][4:])  # norm{i} follows conv{i}
  for s in d.strides[:i]:
    size = -(-size // s)
  return n * size * size


def _variant(spec, crop_size, content):
  """An extra check config: the tiny model with `spec`'s semantics, a crop whose VGG pools meet odd sizes
  (20 -> 10 -> 5 -> 3 -> 2 with 'SAME'), and the content loss on when VGG-19 weights are installed."""
  from lle import config_lib
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  c = config_lib.load(os.path.join(root, "configs", "iqe.py") + ":" + spec)
  c.data.crop_size = crop_size
  c.loss.content_weight = content
  return c


def check_equal(config, lle_method, state, module):
  import jax
  from lle import methods

  _check_one(config, lle_method, state, module, "given config")
  # Batch norm and the paper's loss forms; then the code's forms with the content loss.
  extra = [("tiny,paper", 1.0), ("tiny", 10.0)]
  for spec, content in extra:
    c = _variant(spec, 20, content)
    try:
      _read_vgg(c.loss.vgg_weights)
    except FileNotFoundError:
      print(f"iqe check_equal: no {c.loss.vgg_weights} weights; '{spec}' checked without the content loss")
      c.loss.content_weight = 0.0
    m = methods.get(c)
    s = jax.jit(m.init)(jax.random.key(1))
    mod = build(c)
    lle_count = sum(common.parameter_count(s[k].params) for k in ("gen", "disc"))
    torch_count = sum(p.numel() for p in mod.parameters())
    if lle_count != torch_count:
      raise AssertionError(f"{spec}: lle has {lle_count:,} parameters, torch {torch_count:,}")
    if "vgg" in s:  # the weights build() read for the timed rows are lle's
      for conv in (x for x in mod["vgg"].names if x.startswith("conv")):
        common.assert_close(f"{spec}: VGG {conv}", getattr(mod["vgg"], f"{conv}_weight").numpy(),
                            np.asarray(s["vgg"][conv]["kernel"]).transpose(3, 2, 0, 1), atol=0, rtol=0)
    load_from_lle(mod, s)
    _check_one(c, m, s, mod, f"{spec} (content weight {c.loss.content_weight})")

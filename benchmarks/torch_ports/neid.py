"""PyTorch NEID (lle.nn.neid.NEID, lle.methods.neid): a U-Net encoder shared by LE's and DR's decoders,
DR-guided channel attention (FF), sub-pixel heads; Huber(LE) + lambda_1 MSE(DR) + lambda_2 HSV colour loss,
Adam with lle's learning-rate schedule."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from torch_ports import common


def _shuffle_order(channels: int, r: int) -> np.ndarray:
  """Index map from torch's PixelShuffle channel order (c, row offset, column offset) to lle's
  depth_to_space order (row offset, column offset, c): torch channel k holds lle channel order[k]."""
  return np.arange(channels).reshape(r * r, channels // (r * r)).T.reshape(-1)


class DoubleConv(torch.nn.Module):

  def __init__(self, cin, f, k):
    super().__init__()
    self.convs = torch.nn.ModuleList([common.SameConv2d(cin, f, k), common.SameConv2d(f, f, k)])

  def forward(self, x):
    return F.relu(self.convs[1](F.relu(self.convs[0](x))))


class Decoder(torch.nn.Module):
  """lle's Decoder: per level (coarsest first) a 1x1 conv to 4 f + 2x pixel shuffle, concatenation after the
  (possibly fused) skip, and a DoubleConv. ups[level] / blocks[level] are lle's up_{level} / block_{level};
  the up-convolutions' output channels are stored in PixelShuffle's order (see load_from_lle)."""

  def __init__(self, features, bottleneck, k):
    super().__init__()
    ins = list(features[1:]) + [bottleneck]  # channels reaching level l's up-conv: level l + 1's output
    self.ups = torch.nn.ModuleList([torch.nn.Conv2d(c, 4 * f, 1) for f, c in zip(features, ins)])
    self.blocks = torch.nn.ModuleList([DoubleConv(2 * f, f, k) for f in features])
    self.shuffle = torch.nn.PixelShuffle(2)

  def forward(self, bottleneck, skips, fuse=None):
    x, outs = bottleneck, []
    for level in reversed(range(len(self.blocks))):
      x = self.shuffle(self.ups[level](x))
      skip = skips[level] if fuse is None else fuse(level, skips[level])
      x = self.blocks[level](torch.cat([skip, x], dim=1))
      outs.append(x)
    return outs


class ChannelAttention(torch.nn.Module):

  def __init__(self, c, reduction):
    super().__init__()
    self.dense = torch.nn.ModuleList([torch.nn.Linear(c, max(c // reduction, 1)),
                                      torch.nn.Linear(max(c // reduction, 1), c)])

  def forward(self, x):
    w = torch.sigmoid(self.dense[1](F.relu(self.dense[0](x.mean(dim=(2, 3))))))
    return w[:, :, None, None]


class NEID(torch.nn.Module):

  def __init__(self, config):
    super().__init__()
    m = config.model
    if m.feature_fusing and not m.detail_refinement:
      raise ValueError("feature fusing needs the detail refinement branch (model.detail_refinement)")
    f, k = tuple(m.features), m.kernel_size
    self.upsample, self.scale = m.upsample, config.data.input_scale
    self.encoder = torch.nn.ModuleList([DoubleConv(3 if i == 0 else f[i - 1], f[i], k) for i in range(len(f))])
    self.dr_decoder = Decoder(f[:-1], f[-1], k) if m.detail_refinement else None
    self.ff = (torch.nn.ModuleList([ChannelAttention(c, m.attention_reduction) for c in f[:-1]])
               if m.feature_fusing else None)
    self.le_decoder = Decoder(f[:-1], f[-1], k)
    self.le_head = self._head(f[0], k)
    self.dr_head = self._head(f[0], k) if m.detail_refinement else None
    self.head_shuffle = torch.nn.PixelShuffle(self.scale)

  def _head(self, cin, k):
    if not self.upsample:
      return torch.nn.Conv2d(cin, 3, 1)  # U-Net's final 1x1 convolution
    return common.SameConv2d(cin, 3 * self.scale**2, k)

  def head(self, layer, x):
    return self.head_shuffle(layer(x)) if self.upsample else layer(x)

  def forward(self, x, with_dr=False):
    levels = []
    for i, block in enumerate(self.encoder):
      if i:
        x = F.max_pool2d(x, 2, 2)  # Flax max_pool's 'VALID' windows
      x = block(x)
      levels.append(x)
    skips, bottleneck = levels[:-1], levels[-1]
    dr_levels = fuse = None
    if self.dr_decoder is not None and (with_dr or self.ff is not None):
      dr_levels = self.dr_decoder(bottleneck, skips)
    if self.ff is not None:
      dr_by_level = dr_levels[::-1]

      def fuse(level, skip):
        d = dr_by_level[level]
        a = self.ff[level](d)
        return a * skip + (1.0 - a) * d

    out = self.head(self.le_head, self.le_decoder(bottleneck, skips, fuse)[-1])
    if not with_dr:
      return out
    if self.dr_decoder is None:
      return out, None
    return out, self.head(self.dr_head, dr_levels[-1])


def build(config):
  return NEID(config)


def _layers(module):
  """(path in lle's params, torch layer, pixel-shuffle factor after it or None) for every layer. Flax
  names a module's children in creation order, and `conv(f)(relu(conv(f)(x)))` creates the outer
  (second applied) layer first: in lle's DoubleConv Conv_0 is the second convolution and Conv_1 the first,
  in ChannelAttention Dense_0 is the expanding layer and Dense_1 the reducing one."""
  out = []
  for i, block in enumerate(module.encoder):
    out += [(("encoder", f"DoubleConv_{i}", f"Conv_{1 - j}"), conv, None) for j, conv in enumerate(block.convs)]
  for name in ("dr_decoder", "le_decoder"):
    decoder = getattr(module, name)
    if decoder is None:
      continue
    for level, (up, block) in enumerate(zip(decoder.ups, decoder.blocks)):
      out.append(((name, f"up_{level}"), up, 2))
      out += [((name, f"block_{level}", f"Conv_{1 - j}"), conv, None) for j, conv in enumerate(block.convs)]
  for i, attention in enumerate(module.ff or []):
    out += [((f"ff_{i}", f"Dense_{1 - j}"), dense, None) for j, dense in enumerate(attention.dense)]
  for name in ("le_head", "dr_head"):
    if getattr(module, name) is not None:
      out.append(((name,), getattr(module, name), module.scale if module.upsample else None))
  return out


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def load_from_lle(module, state):
  """lle's parameters by name; the output channels of each conv that feeds a pixel shuffle are reordered
  from depth_to_space's (row, column, c) order to PixelShuffle's (c, row, column)."""
  params = state["net"].params
  layers = _layers(module)
  if len(layers) != len(jax.tree.leaves(params)) // 2:
    raise AssertionError(f"lle has {len(jax.tree.leaves(params)) // 2} layers, the torch network {len(layers)}")
  for path, layer, r in layers:
    p = {k: np.array(v) for k, v in _get(params, path).items()}  # writable copies
    if r is not None:
      order = _shuffle_order(p["bias"].shape[0], r)
      p = {"kernel": p["kernel"][..., order], "bias": p["bias"][order]}
    (common.copy_dense if isinstance(layer, torch.nn.Linear) else common.copy_conv)(layer, p)


def export(module, *, grad=False):
  """The torch parameters (or their gradients) as lle's parameter tree of numpy arrays, in lle's layout."""
  tree = {}
  for path, layer, r in _layers(module):
    w, b = (layer.weight.grad, layer.bias.grad) if grad else (layer.weight, layer.bias)
    w, b = w.detach().cpu().numpy(), b.detach().cpu().numpy()
    kernel = w.T if isinstance(layer, torch.nn.Linear) else w.transpose(2, 3, 1, 0)
    if r is not None:
      inverse = np.argsort(_shuffle_order(b.shape[0], r))
      kernel, b = kernel[..., inverse], b[inverse]
    node = tree
    for key in path:
      node = node.setdefault(key, {})
    node.update(kernel=kernel, bias=b)
  return tree


# Losses, as lle.losses computes them (same clipping, epsilons and tie-breaking of max/min gradients).

def huber(pred, target, delta):
  a = torch.abs(target - pred)
  quadratic = torch.minimum(a, a.new_tensor(delta))
  return torch.mean(0.5 * quadratic**2 + delta * (a - quadratic))


def _mod1(x):
  """jnp.mod(x, 1.0): the truncated remainder, plus 1 where it is negative."""
  r = torch.fmod(x, 1.0)
  return torch.where((r != 0) & (r < 0), r + 1.0, r)


def rgb_to_hsv(rgb, eps=1e-8):
  """lle.color.rgb_to_hsv on NCHW: [N, 3, H, W] -> h, s, each [N, H, W] (v is not needed). amax/amin split
  the gradient between tied channels as jnp.max/min do."""
  r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
  v = rgb.amax(dim=1)
  delta = v - rgb.amin(dim=1)
  chromatic = delta > eps
  safe_delta = torch.where(chromatic, delta, torch.ones_like(delta))
  h = torch.where(v == r, (g - b) / safe_delta,
                  torch.where(v == g, 2.0 + (b - r) / safe_delta, 4.0 + (r - g) / safe_delta))
  h = torch.where(chromatic, _mod1(h / 6.0), torch.zeros_like(h))
  positive = v > eps
  s = torch.where(positive, delta / torch.where(positive, v, torch.ones_like(v)), torch.zeros_like(v))
  return h, s


def cosine_similarity(a, b, eps=1e-12):
  a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
  dot = torch.sum(a * b, dim=1)
  norm = torch.sqrt(torch.sum(a * a, dim=1) + eps) * torch.sqrt(torch.sum(b * b, dim=1) + eps)
  return (dot + eps) / norm


def _hue_on_circle(h, s):
  angle = 2.0 * math.pi * h
  circle = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
  return torch.where((s > 0)[..., None], circle, torch.zeros_like(circle))


def hsv_color_loss(pred, target, hue):
  hp, sp = rgb_to_hsv(torch.clamp(pred, 0.0, 1.0))
  ht, st = rgb_to_hsv(torch.clamp(target, 0.0, 1.0))
  if hue == "angle":
    hp, ht = _hue_on_circle(hp, sp), _hue_on_circle(ht, st)
  elif hue != "number":
    raise ValueError(f"unknown loss.hue {hue!r}")
  return torch.mean((1.0 - cosine_similarity(hp, ht)) + (1.0 - cosine_similarity(sp, st)))


def loss_terms(config, le, dr, batch):
  lc = config.loss
  target = batch["target"]
  terms = {"huber": huber(le, target, lc.huber_delta), "color": hsv_color_loss(le, target, lc.hue)}
  loss = terms["huber"] + lc.color_weight * terms["color"]
  if dr is not None:
    dr_target = {"high": target, "low": batch.get("input_hr")}[lc.dr_target]
    terms["mse_dr"] = torch.mean(torch.square(dr - dr_target))
    loss = loss + lc.mse_weight * terms["mse_dr"]
  return loss, terms


def learning_rate(opt_config, count: int) -> float:
  """lle.optim.schedule's rate for the update after `count` earlier ones (optax's step count)."""
  lr, kind = opt_config.learning_rate, opt_config.schedule
  if kind == "constant":
    return lr
  if kind == "piecewise":
    for boundary, factor in sorted({int(b): float(f) for b, f in
                                    zip(opt_config.boundaries, opt_config.boundary_factors)}.items()):
      lr = lr * factor if count >= boundary else lr
    return lr
  if kind in ("step", "exponential"):
    p = count / opt_config.decay_every
    return lr * opt_config.decay_factor ** (math.floor(p) if kind == "step" else p)
  raise NotImplementedError(f"optimizer.schedule {kind!r}")


def make_step(config, module, *, use_compile):
  o = config.optimizer
  if o.name != "adam":
    raise NotImplementedError(f"optimizer.name {o.name!r}")
  optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate(o, 0), betas=(o.b1, o.b2), eps=o.eps)
  forward = torch.compile(module, dynamic=False) if use_compile else module
  count = 0

  def step(batch):
    nonlocal count
    optimizer.zero_grad(set_to_none=True)
    le, dr = forward(batch["input"], with_dr=True)
    loss, _ = loss_terms(config, le, dr, batch)
    loss.backward()
    for group in optimizer.param_groups:
      group["lr"] = learning_rate(o, count)
    optimizer.step()
    count += 1
    return loss

  return step


def batch(config, rng):
  """The 'neid' recipe's batch: the input bicubic-downsampled by input_scale, the target at the crop size,
  and the full-size input (`input_hr`) when DR's loss reads it."""
  n, size, s = config.batch_size, config.data.crop_size, config.data.input_scale
  out = {"input": rng.random((n, -(-size // s), -(-size // s), 3), np.float32),
         "target": rng.random((n, size, size, 3), np.float32)}
  if config.model.detail_refinement and config.loss.dr_target == "low":
    out["input_hr"] = rng.random((n, size, size, 3), np.float32)
  return out


def _assert_tree_close(name, torch_tree, lle_tree, *, atol_fraction, rtol):
  """Every leaf, with atol a fraction of the largest magnitude in that leaf of lle's tree."""
  for path, value in jax.tree_util.tree_leaves_with_path(lle_tree):
    value = np.asarray(value)
    keys = [p.key for p in path]
    atol = atol_fraction * float(np.max(np.abs(value)))
    common.assert_close(f"{name} {'/'.join(keys)}", _get(torch_tree, keys), value, atol=atol, rtol=rtol)


def check_equal(config, lle_method, state, module, *, steps=3):
  """Outputs, loss terms and gradients on a small batch, the colour loss on its own, then `steps` whole
  train steps (which leave `module` trained)."""
  from lle.methods import neid as lle_neid
  from lle import losses as lle_losses
  net = state["net"]
  params = net.params
  scale, levels = config.data.input_scale, len(config.model.features)
  multiple = 2 ** (levels - 1)
  size = max(3 * multiple, -(-12 // multiple) * multiple)
  rng = np.random.default_rng(0)
  out_size = size * scale if config.model.upsample else size
  data = {"input": rng.random((2, size, size, 3), np.float32),
          "target": rng.random((2, out_size, out_size, 3), np.float32)}
  if config.model.detail_refinement and config.loss.dr_target == "low":
    data["input_hr"] = rng.random(data["target"].shape, np.float32)
  torch_data = {k: common.to_nchw(v) for k, v in data.items()}

  with jax.default_matmul_precision("highest"):
    le, dr = net.apply_fn({"params": params}, jnp.asarray(data["input"]), with_dr=True)

    def loss_fn(p):
      a, b = net.apply_fn({"params": p}, data["input"], with_dr=True)
      return lle_neid.loss_terms(a, b, data, config=config)

    (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)

  torch_le, torch_dr = module(torch_data["input"], with_dr=True)
  torch_loss, torch_terms = loss_terms(config, torch_le, torch_dr, torch_data)
  module.zero_grad(set_to_none=True)
  torch_loss.backward()

  common.assert_close("LE output", common.to_nhwc(torch_le), le, atol=1e-6, rtol=1e-4)
  if dr is None:
    assert torch_dr is None, "torch returns a DR output where lle has none"
  else:
    common.assert_close("DR output", common.to_nhwc(torch_dr), dr, atol=1e-6, rtol=1e-4)
  assert sorted(terms) == sorted(torch_terms), f"loss terms: torch {sorted(torch_terms)}, lle {sorted(terms)}"
  for k in terms:
    common.assert_close(f"loss term {k}", torch_terms[k], terms[k], atol=1e-7, rtol=1e-5)
  common.assert_close("loss", torch_loss, loss, atol=1e-7, rtol=1e-5)
  # Gradients agree to a fraction of each leaf's largest entry rather than entry by entry: at this init
  # LE's output is ~1e-4, nearly black, where the colour loss's hue (g - b) / (max - min) and saturation
  # amplify the ~1e-10 differences of the two forward passes 1e4-1e5 times (its gradient with respect
  # to LE reaches ~50 where Huber's is ~3e-4), so small entries differ by up to ~1% (demo config).
  torch_grads = export(module, grad=True)
  first = ("encoder", "DoubleConv_0", "Conv_1")  # the first convolution applied (see _layers)
  shown = [("first conv's kernel gradient", first)]
  if "dr_head" in grads:
    shown.append(("DR head's kernel gradient", ("dr_head",)))
  for name, path in shown:
    value = np.asarray(_get(grads, path)["kernel"])
    common.assert_close(name, _get(torch_grads, path)["kernel"], value, atol=1e-4 * np.abs(value).max(), rtol=1e-3)
  _assert_tree_close("gradient", torch_grads, grads, atol_fraction=1e-4, rtol=1e-3)

  # The colour loss alone on images with every case (clipped channels, grey pixels, hues on both sides of
  # red's wrap-around), value and gradient: the network's initial outputs (weights ~ N(0, 0.02)) are ~1e-4,
  # nearly black, so they barely exercise it.
  pred = rng.uniform(-0.2, 1.2, (2, 8, 8, 3)).astype(np.float32)
  pred[0, :2] = pred[0, :2, :, :1]  # grey pixels
  target = rng.random((2, 8, 8, 3), np.float32)
  for hue in ("number", "angle"):
    value, grad = jax.value_and_grad(functools.partial(lle_losses.hsv_color_loss, hue=hue))(pred, target)
    p = common.to_nchw(pred).requires_grad_()
    torch_value = hsv_color_loss(p, common.to_nchw(target), hue)
    torch_value.backward()
    common.assert_close(f"HSV colour loss (hue {hue})", torch_value, value, atol=1e-6, rtol=1e-5)
    common.assert_close(f"HSV colour loss gradient (hue {hue})", common.to_nhwc(p.grad), grad, atol=1e-6, rtol=1e-4)

  # Whole train steps, across the schedule's first boundary when it is within `steps`. Adam's first update
  # is lr g / (|g| + eps): where the first gradient is well above eps the parameters after it agree to a
  # small fraction of lr. Where it is near eps (dead or nearly dead channels at this init: a gradient whose
  # float32 rounding, even its sign, differs between the two frameworks) the updates may differ by up to
  # 2 lr, so those elements are left out (their gradients are checked above). Later steps take gradients
  # that the colour loss's amplification (see above) leaves ~1% apart in small entries, and where a
  # gradient changes sign between steps Adam's moments cancel and magnify that (1.6% of lr seen on the demo
  # config): after the last step every element within 10% of lr, their mean within 0.1% of lr.
  lr = config.optimizer.learning_rate
  torch_step = make_step(config, module, use_compile=False)
  train_step = jax.jit(lle_method.train_step)
  lle_state = state
  with jax.default_matmul_precision("highest"):
    for i in range(steps):
      lle_state, metrics = train_step(lle_state, data, jax.random.key(i))
      torch_loss = torch_step(torch_data)
      common.assert_close(f"step {i} learning rate", learning_rate(config.optimizer, i), metrics["learning_rate"],
                          atol=0, rtol=1e-6)
      common.assert_close(f"step {i} loss", torch_loss, metrics["loss"], atol=1e-7, rtol=1e-5)
      if i not in (0, steps - 1):
        continue
      after, differences = export(module), []
      for path, value in jax.tree_util.tree_leaves_with_path(lle_state["net"].params):
        keys = [p.key for p in path]
        steady = np.abs(np.asarray(_get(grads, keys))) > 100 * config.optimizer.eps
        mine, value = _get(after, keys)[steady], np.asarray(value)[steady]
        common.assert_close(f"parameters after {i + 1} steps {'/'.join(keys)}", mine, value,
                            atol=(1e-3 if i == 0 else 0.1) * lr, rtol=1e-5)
        differences.append(np.abs(mine - value))
      mean = float(np.mean(np.concatenate(differences)))
      assert mean <= 1e-3 * lr, f"parameters after {i + 1} steps: mean difference {mean:.3g} > 1e-3 lr"

"""Helpers shared by the PyTorch ports: TensorFlow/Flax padding, NHWC <-> NCHW, weight copies, checks."""
import numpy as np
import torch
import torch.nn.functional as F


def same_pad(x: torch.Tensor, kernel: int, stride: int = 1) -> torch.Tensor:
  """TensorFlow/Flax 'SAME' padding of an NCHW tensor: total max((ceil(n / s) - 1) s + k - n, 0) per
  axis, the odd pixel after (PyTorch's symmetric `padding=` differs for even kernels and strides)."""
  pads = []
  for n in (x.shape[3], x.shape[2]):
    total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
    pads += [total // 2, total - total // 2]
  return F.pad(x, pads)


class SameConv2d(torch.nn.Conv2d):
  """Conv2d with Flax's default 'SAME' padding."""

  def forward(self, x):
    return super().forward(same_pad(x, self.kernel_size[0], self.stride[0]))


def to_nchw(x) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32))).permute(0, 3, 1, 2)


def to_nhwc(x: torch.Tensor) -> np.ndarray:
  return x.detach().permute(0, 2, 3, 1).cpu().numpy()


def copy_conv(conv: torch.nn.Conv2d, flax_layer) -> None:
  """A Flax Conv's {'kernel' [kh, kw, in, out], 'bias'} into a torch Conv2d (weight [out, in, kh, kw])."""
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(np.asarray(flax_layer["kernel"]).transpose(3, 2, 0, 1).copy()))
    if conv.bias is not None:
      conv.bias.copy_(torch.from_numpy(np.asarray(flax_layer["bias"])))


def copy_dense(linear: torch.nn.Linear, flax_layer) -> None:
  """A Flax Dense's {'kernel' [in, out], 'bias'} into a torch Linear (weight [out, in])."""
  with torch.no_grad():
    linear.weight.copy_(torch.from_numpy(np.asarray(flax_layer["kernel"]).T.copy()))
    linear.bias.copy_(torch.from_numpy(np.asarray(flax_layer["bias"])))


def numbered(tree) -> list:
  """A Flax param dict's auto-named children ('Conv_0', 'Conv_1', ..., 'Conv_10') in creation order."""
  return [tree[k] for k in sorted(tree, key=lambda n: int(n.rsplit("_", 1)[1]))]


def parameter_count(tree) -> int:
  import jax
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def assert_close(name: str, torch_value, lle_value, *, atol: float, rtol: float) -> None:
  if isinstance(torch_value, torch.Tensor):
    torch_value = torch_value.detach().cpu().numpy()
  try:
    np.testing.assert_allclose(np.asarray(torch_value), np.asarray(lle_value), atol=atol, rtol=rtol)
  except AssertionError as e:
    raise AssertionError(f"{name}: torch and lle differ\n{e}") from None


def run_vgg_layers(x: torch.Tensor, module: torch.nn.Module, names, *, ceil_mode: bool = False) -> torch.Tensor:
  """lle.nn.vgg's layer walk on NCHW input: 'conv*' (3x3, padding 1, weights in the module's
  `<name>_weight` / `<name>_bias` buffers), 'relu*', and 2x2 max pools ('SAME' pooling = ceil_mode)."""
  for name in names:
    if name.startswith("conv"):
      x = F.conv2d(x, getattr(module, f"{name}_weight"), getattr(module, f"{name}_bias"), padding=1)
    elif name.startswith("relu"):
      x = F.relu(x)
    else:
      x = F.max_pool2d(x, 2, 2, ceil_mode=ceil_mode)
  return x

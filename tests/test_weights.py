"""VGG weights: a file in each supported format (random weights, the real layer names and shapes) is
written here, imported, and the Flax network checked against a float64 numpy transcription of VGG and of
the format's input convention. Then the perceptual loss and the errors."""
import collections
import io
import json
import os
import subprocess
import sys
import types
import zipfile

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io
from safetensors.numpy import save_file

from lle import losses, weights
from lle.nn import vgg
from tests.conftest import REPO


def _random_vgg(depth, seed=0):
  """{conv: (HWIO kernel, bias)} with He-scaled weights, so activations stay O(1) through the net."""
  rng = np.random.default_rng(seed)
  return {name: ((rng.standard_normal(k) * np.sqrt(2.0 / (9 * k[2]))).astype(np.float32),
                 (rng.standard_normal(b) * 0.1).astype(np.float32))
          for name, (k, b) in weights.expected_shapes(depth).items()}


# --- writers in each format's own layout -----------------------------------------------------------

def _torch_keys(params, depth):
  """torchvision `features.<i>` indices: conv, ReLU and pool each take one index."""
  names = vgg.layer_names(depth)
  out = collections.OrderedDict()
  for conv, (kernel, bias) in params.items():
    i = names.index(conv)
    out[f"features.{i}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # OIHW
    out[f"features.{i}.bias"] = bias
  out["classifier.6.weight"] = np.zeros((10, 4), np.float32)  # classifier tensors are ignored
  return out


def _write_pth(path, tensors, monkeypatch, views=None):
  """torch.save's zip layout (archive/data.pkl + archive/data/<key>), written without torch: the pickle
  names torch's own globals, which exist here only as stand-in modules while writing. `views` {key:
  (offset, size, stride)} replaces the view of a tensor's storage that the pickle gives (a crafted file)."""
  torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")

  def _rebuild_tensor_v2(*args):
    raise AssertionError("never called while writing")

  _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
  float_storage = type("FloatStorage", (), {"__module__": "torch"})
  torch_module.FloatStorage, torch_module._utils = float_storage, utils_module
  utils_module._rebuild_tensor_v2 = _rebuild_tensor_v2
  monkeypatch.setitem(sys.modules, "torch", torch_module)
  monkeypatch.setitem(sys.modules, "torch._utils", utils_module)

  class Storage:
    def __init__(self, key, array):
      self.key, self.array = key, array

  class Tensor:
    def __init__(self, storage, view):
      self.storage, self.view = storage, view

    def __reduce__(self):
      a = self.storage.array
      offset, size, stride = self.view or (0, a.shape, tuple(s // a.itemsize for s in a.strides))
      return _rebuild_tensor_v2, (self.storage, offset, size, stride, False, collections.OrderedDict())

  storages = {}
  tree = collections.OrderedDict()
  for i, (k, v) in enumerate(tensors.items()):
    storages[str(i)] = np.ascontiguousarray(v, np.float32)
    tree[k] = Tensor(Storage(str(i), storages[str(i)]), (views or {}).get(k))

  class Pickler(__import__("pickle").Pickler):
    def persistent_id(self, obj):
      if isinstance(obj, Storage):
        return ("storage", float_storage, obj.key, "cpu", obj.array.size)
      return None

  buffer = io.BytesIO()
  Pickler(buffer, protocol=2).dump(tree)
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("archive/data.pkl", buffer.getvalue())
    z.writestr("archive/byteorder", "little")
    for key, array in storages.items():
      z.writestr(f"archive/data/{key}", array.tobytes())
    z.writestr("archive/version", "3\n")


def _write_h5(path, params):
  """keras.applications layout: a group per layer with `weight_names`; Keras 2 weight naming."""
  with h5py.File(path, "w") as f:
    layer_names = []
    for conv, (kernel, bias) in params.items():
      group_name = f"block{conv[4]}_conv{conv.split('_')[1]}"
      layer_names.append(group_name)
      group = f.create_group(group_name)
      names = [f"{group_name}/kernel:0", f"{group_name}/bias:0"]
      group.attrs["weight_names"] = [n.encode() for n in names]
      group[names[0]], group[names[1]] = kernel, bias
    f.attrs["layer_names"] = [n.encode() for n in layer_names]


def _write_mat(path, params, depth):
  """MatConvNet imagenet-vgg-verydeep layout: `layers` cell of structs; kernels stored [W, H, in, out]."""
  layers = []
  for name in vgg.layer_names(depth):
    if name.startswith("conv"):
      kernel, bias = params[name]
      w = np.empty((1, 2), dtype=object)
      w[0, 0], w[0, 1] = kernel.transpose(1, 0, 2, 3), bias.reshape(1, -1)
      layers.append({"name": name, "type": "conv", "weights": w, "stride": np.array([1, 1]),
                     "pad": np.array([1, 1, 1, 1])})
    else:
      layers.append({"name": name, "type": "relu" if name.startswith("relu") else "pool"})
  cell = np.empty((1, len(layers)), dtype=object)
  for i, layer in enumerate(layers):
    cell[0, i] = layer
  mean = np.broadcast_to(np.array([123.68, 116.779, 103.939]), (4, 4, 3)).copy()
  scipy.io.savemat(path, {"layers": cell, "normalization": {"averageImage": mean}})


# --- an independent float64 reference ------------------------------------------------------------

def _reference(rgb01, params, depth, source, until):
  x = np.asarray(rgb01, np.float64)
  if source in ("torchvision", "timm"):
    x = (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
  elif source == "keras":
    x = x[..., ::-1] * 255.0 - [103.939, 116.779, 123.68]
  else:
    x = x * 255.0 - [123.68, 116.779, 103.939]
  out = {}
  for name in vgg.layer_names(depth):
    if name.startswith("conv"):
      kernel, bias = (np.asarray(a, np.float64) for a in params[name])
      n, h, w, _ = x.shape
      padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
      x = sum(np.einsum("nhwc,cd->nhwd", padded[:, i:i + h, j:j + w], kernel[i, j])
              for i in range(3) for j in range(3)) + bias
    elif name.startswith("relu"):
      x = np.maximum(x, 0.0)
    else:
      n, h, w, c = x.shape
      x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    out[name] = x
    if name == until:
      return out


@pytest.fixture(scope="module")
def vgg19_params():
  return _random_vgg(19)


def _write(fmt, tmp_path, params, depth, monkeypatch):
  if fmt == "pth":
    path = tmp_path / f"vgg{depth}.pth"
    _write_pth(path, _torch_keys(params, depth), monkeypatch)
  elif fmt == "safetensors":
    path = tmp_path / "model.safetensors"
    save_file(dict(_torch_keys(params, depth)), str(path))
  elif fmt == "h5":
    path = tmp_path / f"vgg{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    _write_h5(path, params)
  else:
    path = tmp_path / f"imagenet-vgg-verydeep-{depth}.mat"
    _write_mat(path, params, depth)
  return str(path)


@pytest.mark.parametrize("fmt, source", [("pth", "torchvision"), ("safetensors", "timm"), ("h5", "keras"),
                                         ("mat", "matconvnet")])
def test_each_format_imports_and_matches_a_float64_reference(fmt, source, tmp_path, monkeypatch, vgg19_params):
  path = _write(fmt, tmp_path, vgg19_params, 19, monkeypatch)
  folder = weights.convert("vgg19", path, out_dir=str(tmp_path / "weights"))
  params, preprocess, meta = weights.load(f"vgg19_{source}", root=str(tmp_path / "weights"))
  assert meta["source"] == source and folder.endswith(f"vgg19_{source}")
  rgb = np.random.default_rng(1).random((2, 36, 36, 3)).astype(np.float32)  # 36 -> 18 -> 9 -> 4 -> 2
  taps = ("relu1_2", "pool3", "relu5_4")
  got = vgg.frozen_features(params, depth=19, taps=taps)(preprocess(jnp.asarray(rgb)))
  want = _reference(rgb, vgg19_params, 19, source, "relu5_4")
  for tap in taps:
    scale = np.abs(want[tap]).max()
    assert scale > 0 and got[tap].shape == want[tap].shape
    assert np.abs(np.asarray(got[tap], np.float64) - want[tap]).max() <= 1e-5 * scale, tap


def test_vgg16_from_torchvision_layout(tmp_path, monkeypatch):
  params16 = _random_vgg(16, seed=3)
  path = _write("pth", tmp_path, params16, 16, monkeypatch)
  weights.convert("vgg16", path, out_dir=str(tmp_path))
  params, preprocess, _ = weights.load("vgg16_torchvision", root=str(tmp_path))
  rgb = np.random.default_rng(2).random((1, 32, 32, 3)).astype(np.float32)
  got = vgg.frozen_features(params, depth=16, taps=("relu5_3",))(preprocess(jnp.asarray(rgb)))["relu5_3"]
  want = _reference(rgb, params16, 16, "torchvision", "relu5_3")["relu5_3"]
  assert np.abs(np.asarray(got, np.float64) - want).max() <= 1e-5 * np.abs(want).max()
  with pytest.raises(weights.WeightsError, match="expected 16 convolutions .* found 13"):
    weights.convert("vgg19", path, out_dir=str(tmp_path))


def test_cli_prints_shapes_and_checksum_and_a_damaged_copy_is_refused(tmp_path, monkeypatch, capsys, vgg19_params):
  path = _write("mat", tmp_path, vgg19_params, 19, monkeypatch)
  assert weights.main(["vgg19", "--from", path, "--weights_dir", str(tmp_path / "w")]) == 0
  out = capsys.readouterr().out
  assert "conv5_4  3x3x512x512" in out and "conv1_1  3x3x3x64" in out
  meta = json.loads((tmp_path / "w" / "vgg19_matconvnet" / "meta.json").read_text())
  assert meta["params_sha256"] in out and meta["preprocess"]["mean"] == pytest.approx([123.68, 116.779, 103.939])
  params_file = tmp_path / "w" / "vgg19_matconvnet" / "params.npz"
  params_file.write_bytes(params_file.read_bytes()[:-10] + b"0123456789")
  with pytest.raises(weights.WeightsError, match="SHA-256 differs"):
    weights.load("vgg19_matconvnet", root=str(tmp_path / "w"))


def test_wrong_layer_shape_names_the_layer(tmp_path, vgg19_params):
  bad = dict(vgg19_params)
  bad["conv3_2"] = (np.zeros((3, 3, 256, 128), np.float32), np.zeros(128, np.float32))
  path = tmp_path / "bad.h5"
  _write_h5(path, bad)
  with pytest.raises(weights.WeightsError, match=r"layer conv3_2 has kernel \(3, 3, 256, 128\)"):
    weights.convert("vgg19", str(path), out_dir=str(tmp_path))


def test_a_pth_that_pickles_anything_but_tensors_is_refused(tmp_path):
  import pickle
  path = tmp_path / "evil.pth"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"x": print}))  # any callable: never resolved
  with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
    weights.read_pth(str(path))


def test_missing_weights_is_a_one_line_error_naming_where_to_get_them(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    weights.load("vgg19_matconvnet", root=str(tmp_path))
  message = str(e.value)
  assert "\n" not in message and str(tmp_path / "vgg19_matconvnet") in message
  assert "python -m lle.weights vgg19 --from FILE --id vgg19_matconvnet" in message
  assert "https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-19.mat" in message


def test_nth_layer_counts():
  assert vgg.nth_layer(19, 5, "torchvision") == "pool1"
  assert vgg.nth_layer(19, 5, "keras") == "relu2_2"
  assert vgg.nth_layer(19, 5, "conv") == "relu3_1"
  assert vgg.nth_layer(19, 16, "conv") == "relu5_4" and len(vgg.layer_names(16)) == 31
  with pytest.raises(ValueError, match="has 16 layers"):
    vgg.nth_layer(19, 17, "conv")


def test_perceptual_loss_gradients_distances_and_grey_inputs(vgg19_params):
  params = {k: {"kernel": kb[0], "bias": kb[1]} for k, kb in vgg19_params.items()}
  preprocess = weights.PREPROCESS["matconvnet"]
  rng = np.random.default_rng(4)
  pred, target = (jnp.asarray(rng.random((2, 20, 20, 3)), jnp.float32) for _ in range(2))

  def loss(params, pred, distance="mse"):
    features = vgg.frozen_features(params, depth=19, taps=("relu2_2",))
    return losses.perceptual(pred, target, features=features, layer="relu2_2", preprocess=preprocess,
                             distance=distance)

  d_params, d_pred = jax.grad(loss, argnums=(0, 1))(params, pred)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(d_params))  # the VGG stays frozen
  assert float(jnp.abs(d_pred).max()) > 0

  ref_p = _reference(np.asarray(pred), vgg19_params, 19, "matconvnet", "relu2_2")["relu2_2"]
  ref_t = _reference(np.asarray(target), vgg19_params, 19, "matconvnet", "relu2_2")["relu2_2"]
  mse = np.mean((ref_p - ref_t) ** 2)
  l2 = np.mean([np.sqrt(np.sum((a - b) ** 2)) / a.size for a, b in zip(ref_p, ref_t)])
  assert float(loss(params, pred)) == pytest.approx(mse, rel=1e-4)
  assert float(loss(params, pred, "l2_over_chw")) == pytest.approx(l2, rel=1e-4)

  grey_p, grey_t = pred[..., :1], target[..., :1]
  features = vgg.frozen_features(params, depth=19, taps=("relu2_2",))
  kw = dict(features=features, layer="relu2_2", preprocess=preprocess)
  assert float(losses.perceptual(grey_p, grey_t, **kw)) == pytest.approx(
      float(losses.perceptual(jnp.repeat(grey_p, 3, -1), jnp.repeat(grey_t, 3, -1), **kw)), rel=1e-6)
  with pytest.raises(ValueError, match="unknown perceptual distance"):
    losses.perceptual(pred, target, distance="l1", **kw)


def test_an_id_is_one_name_and_only_a_folder_lle_converted_is_replaced(tmp_path, monkeypatch, capsys, vgg19_params):
  source = _write("h5", tmp_path, vgg19_params, 19, monkeypatch)
  root = tmp_path / "weights"
  photos = tmp_path / "photos"
  photos.mkdir()
  (photos / "a.jpg").write_bytes(b"a photo")
  (root / "mine").mkdir(parents=True)
  (root / "mine" / "notes.txt").write_text("not weights")
  convert = lambda name: weights.main(["vgg19", "--from", source, "--weights_dir", str(root), "--id", name])  # noqa: E731
  for bad in (str(photos), ".", "..", "a/b", "../photos"):
    assert convert(bad) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --id {bad!r} is not an id"), err
  assert (photos / "a.jpg").read_bytes() == b"a photo" and sorted(os.listdir(root)) == ["mine"]
  assert convert("mine") == 1  # a folder without lle's meta.json: never replaced
  assert "is not a folder that lle converted" in capsys.readouterr().err
  assert (root / "mine" / "notes.txt").read_text() == "not weights"

  assert convert("ours") == 0
  meta = (root / "ours" / "meta.json").read_text()

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(weights.np, "savez", disk_full)
  assert convert("ours") == 1  # a conversion that fails leaves the converted folder as it was
  assert "No space left on device" in capsys.readouterr().err
  assert (root / "ours" / "meta.json").read_text() == meta
  weights.load("ours", root=str(root))  # still complete: its checksum holds
  monkeypatch.undo()
  assert convert("ours") == 0  # replaced: written beside it, then renamed into place
  assert sorted(os.listdir(root)) == ["mine", "ours"]  # no temporary folder left behind


_READ_CRAFTED = """
import sys
from lle import weights
for path in sys.argv[1:]:
  try:
    weights.read_pth(path)
    print("READ", path)
  except weights.WeightsError as e:
    print("REFUSED", e)
"""


def test_a_pth_whose_views_leave_their_storage_is_refused_naming_the_tensor(tmp_path, monkeypatch):
  """A crafted file of allowed globals only: a 1-element storage viewed as 64x3x3x3 with huge strides
  made numpy read far outside it (a crash), smaller strides would have copied nearby memory into the
  weights. Read in child processes, so that a crash fails the test instead of killing pytest."""
  one = {"features.0.weight": np.ones(1, np.float32)}
  cases = {"huge": (0, (64, 3, 3, 3), (2**40, 2**40, 2**40, 2**40)), "past_end": (0, (4,), (1,)),
           "offset": (3, (1,), (1,)), "negative": (0, (2,), (-1,)), "fits": (0, (3,), (0,))}
  for name, view in cases.items():
    _write_pth(tmp_path / f"{name}.pth", one, monkeypatch, views={"features.0.weight": view})
  # A storage whose bytes are fewer than its element count says.
  with zipfile.ZipFile(tmp_path / "fits.pth") as z:
    files = {n: z.read(n) for n in z.namelist()}
  with zipfile.ZipFile(tmp_path / "short.pth", "w") as z:
    for n, data in files.items():
      z.writestr(n, data[:2] if n.endswith("data/0") else data)
  paths = [str(tmp_path / f"{n}.pth") for n in (*cases, "short")]
  out = subprocess.run([sys.executable, "-c", _READ_CRAFTED, *paths], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
  lines = dict(zip((*cases, "short"), out.stdout.splitlines()))
  assert lines["huge"] == (f"REFUSED {paths[0]}: tensor 'features.0.weight' (size (64, 3, 3, 3), stride "
                           f"({2**40}, {2**40}, {2**40}, {2**40}), offset 0) reaches element {(63 + 2 + 2 + 2) * 2**40} "
                           "of a storage of 1 float32 elements (a damaged or crafted file)")
  assert "reaches element 3 of a storage of 1" in lines["past_end"]
  assert "reaches element 3 of a storage of 1" in lines["offset"]
  assert "negative offset, size or stride" in lines["negative"] and "'features.0.weight'" in lines["negative"]
  assert lines["fits"] == f"READ {paths[4]}"  # a stride of 0 repeats the one element: inside the storage
  assert "storage '0' holds 2 bytes; 1 float32 elements need 4" in lines["short"]
  cli = subprocess.run([sys.executable, "-m", "lle.weights", "vgg19", "--from", paths[0], "--weights_dir",
                        str(tmp_path / "w")], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert cli.returncode == 1 and cli.stderr.count("\n") == 1, (cli.returncode, cli.stderr[-2000:])
  assert cli.stderr.startswith(f"error: {paths[0]}: tensor 'features.0.weight'") and not os.path.exists(tmp_path / "w")


def test_foreign_and_damaged_weight_files_are_one_line_errors(tmp_path, capsys):
  (tmp_path / "text.pth").write_text("not a torch file\n" * 5)
  with zipfile.ZipFile(tmp_path / "other.pth", "w") as z:
    z.writestr("archive/readme.txt", "no data.pkl")
  (tmp_path / "text.h5").write_bytes(b"\x89HDF not really" * 10)
  (tmp_path / "text.mat").write_bytes(b"MATLAB? no" * 20)
  expected = {"text.pth": "not a readable torchvision VGG weights file (UnpicklingError",
              "other.pth": "a zip archive without the data.pkl of a torch.save file",
              "text.h5": "not a readable keras VGG weights file (OSError", "text.mat": "not a readable matconvnet"}
  for name, message in expected.items():
    assert weights.main(["vgg19", "--from", str(tmp_path / name), "--weights_dir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / name}: {message}"), err

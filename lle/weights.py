"""Pretrained VGG weights from the files researchers hold, converted once into lle's own checked form.

  python -m lle.weights vgg19 --from FILE [--id NAME]     # FILE: .pth, .safetensors, .h5 or .mat
  python -m lle.weights dped --from DIR/iphone_orig        # a released TF 1 model -> a run folder
  python -m lle.weights gladnet --from DIR/model           #   (see lle/releases.py)

reads FILE, checks every layer's name and shape, and writes `$LLE_WEIGHTS_DIR/NAME/` (default
`~/.cache/lle/weights`; NAME defaults to `vgg19_<source>`): `params.npz` (HWIO kernels) and `meta.json`
(the source file and its SHA-256, the input convention the weights were trained with, every layer's
shape and the SHA-256 of params.npz). Configs name weights by NAME; `load(NAME)` checks the checksum.
NAME is one name, never a path; the folder is written beside the old one and renamed into place, and a
folder that lle did not convert is never replaced.

Each source has its own input convention, kept with the weights and applied by `Preprocess`:
  torchvision / timm   RGB in [0, 1], minus mean (0.485, 0.456, 0.406), divided by std (0.229, 0.224, 0.225)
  Keras (caffe mode)   BGR in [0, 255], minus mean (103.939, 116.779, 123.68) (B, G, R), no std
  MatConvNet (DPED)    RGB in [0, 255], minus mean (123.68, 116.779, 103.939), no std
No file is ever unpickled freely: .pth files are read by an unpickler that only rebuilds tensors, and
every tensor's view is checked against its storage before it is read.
"""
import argparse
import collections
import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import struct
import sys
import tempfile
import zipfile

import numpy as np

from lle import cli
from lle.nn import vgg

OFFICIAL = {
    "torchvision": {16: "https://download.pytorch.org/models/vgg16-397923af.pth",
                    19: "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"},
    "timm": {16: "https://huggingface.co/timm/vgg16.tv_in1k (model.safetensors)",
             19: "https://huggingface.co/timm/vgg19.tv_in1k (model.safetensors)"},
    "keras": {d: (f"https://storage.googleapis.com/tensorflow/keras-applications/vgg{d}/"
                  f"vgg{d}_weights_tf_dim_ordering_tf_kernels_notop.h5") for d in (16, 19)},
    "matconvnet": {d: f"https://www.vlfeat.org/matconvnet/models/imagenet-vgg-verydeep-{d}.mat" for d in (16, 19)},
}


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Maps RGB images in [0, 1] to the input the weights were trained on."""
  bgr: bool
  scale: float  # 1.0 for [0, 1] inputs, 255.0 for [0, 255]
  mean: tuple[float, float, float]  # in the network's channel order and scale
  std: tuple[float, float, float] = (1.0, 1.0, 1.0)

  def __call__(self, rgb01):
    x = rgb01[..., ::-1] if self.bgr else rgb01
    return (x * self.scale - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)


PREPROCESS = {
    "torchvision": Preprocess(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "timm": Preprocess(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "keras": Preprocess(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68)),
    "matconvnet": Preprocess(bgr=False, scale=255.0, mean=(123.68, 116.779, 103.939)),
}


class WeightsError(ValueError):
  pass


def weights_dir() -> str:
  return os.environ.get("LLE_WEIGHTS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "lle", "weights")


def expected_shapes(depth: int) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
  """{conv name: (HWIO kernel shape, bias shape)}."""
  shapes, channels = {}, 3
  for name in vgg.conv_names(depth):
    width = vgg.WIDTHS[int(name[4]) - 1]
    shapes[name] = ((3, 3, channels, width), (width,))
    channels = width
  return shapes


# --- readers: each returns {conv name: (HWIO kernel, bias)} as found in the file -----------------------

def _torch_features_to_convs(tensors: dict, depth: int, path: str):
  """torchvision/timm keys `features.<i>.weight` [out, in, 3, 3] -> HWIO, in order of `i`."""
  indices = sorted({int(k.split(".")[1]) for k in tensors if k.startswith("features.") and k.endswith(".weight")})
  names = vgg.conv_names(depth)
  if len(indices) != len(names):
    raise WeightsError(f"{path}: expected {len(names)} convolutions `features.<i>.weight` of a VGG-{depth}, "
                       f"found {len(indices)} (a VGG-{16 if depth == 19 else 19} file?)")
  out = {}
  for name, i in zip(names, indices):
    kernel = np.asarray(tensors[f"features.{i}.weight"])
    bias = np.asarray(tensors[f"features.{i}.bias"])
    out[name] = (kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel, bias)
  return out


_TORCH_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                 "BFloat16Storage": None, "LongStorage": np.int64, "IntStorage": np.int32,
                 "ByteStorage": np.uint8}


class _StorageType:
  def __init__(self, name):
    if name not in _TORCH_DTYPES or _TORCH_DTYPES[name] is None:
      raise pickle.UnpicklingError(f"tensor storage {name} is not supported")
    self.dtype = np.dtype(_TORCH_DTYPES[name])


@dataclasses.dataclass(frozen=True)
class _View:
  """A tensor as the pickle describes it: a strided view of a storage, read only once it is checked."""
  storage: object  # the storage's elements, or (legacy files) a function returning them once read
  offset: object
  size: object
  stride: object

  def array(self, where: str) -> np.ndarray:
    """The tensor, copied out of its storage; `WeightsError` naming `where` if the view does not fit in
    the storage (a damaged or crafted file would otherwise make numpy read memory outside it)."""
    data = self.storage() if callable(self.storage) else self.storage
    if not isinstance(data, np.ndarray) or data.ndim != 1:
      raise WeightsError(f"{where} is not a view of a tensor storage")
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not (is_int(self.offset) and isinstance(self.size, (tuple, list)) and isinstance(self.stride, (tuple, list))
            and len(self.size) == len(self.stride) and all(map(is_int, (*self.size, *self.stride)))):
      raise WeightsError(f"{where} has a malformed view (offset {self.offset!r}, size {self.size!r}, "
                         f"stride {self.stride!r})")
    if self.offset < 0 or min((*self.size, *self.stride), default=0) < 0:
      raise WeightsError(f"{where} has a negative offset, size or stride (offset {self.offset}, size "
                         f"{tuple(self.size)}, stride {tuple(self.stride)})")
    if 0 not in self.size:
      last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
      if last >= data.size:
        raise WeightsError(f"{where} (size {tuple(self.size)}, stride {tuple(self.stride)}, offset {self.offset}) "
                           f"reaches element {last} of a storage of {data.size} {data.dtype} elements "
                           "(a damaged or crafted file)")
    return np.lib.stride_tricks.as_strided(data[self.offset:], shape=tuple(self.size),
                                           strides=tuple(s * data.itemsize for s in self.stride)).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _View(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
  return data


class _TensorsOnly(pickle.Unpickler):
  """Rebuilds a state dict of tensors and nothing else (the same set of globals that torch.load's
  weights_only mode allows for a plain state dict); any other global is refused."""
  ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
             ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
             ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

  def __init__(self, file, load_storage):
    super().__init__(file)
    self._load_storage = load_storage

  def find_class(self, module, name):
    if (module, name) in self.ALLOWED:
      return self.ALLOWED[(module, name)]
    if module == "torch" and name.endswith("Storage"):
      return _StorageType(name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weights file holds only tensors")

  def persistent_load(self, pid):
    if self._load_storage is None or not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    _, storage_type, key, _location, numel = pid[:5]
    return self._load_storage(storage_type, str(key), numel)


def _storage(raw: bytes, storage_type, numel: int, where: str) -> np.ndarray:
  """A storage's elements from its bytes, checked against the element count the pickle gives."""
  if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
    raise WeightsError(f"{where}: malformed storage record ({storage_type!r}, {numel!r} elements)")
  if len(raw) != numel * storage_type.dtype.itemsize:
    raise WeightsError(f"{where} holds {len(raw)} bytes; {numel} {storage_type.dtype} elements need "
                       f"{numel * storage_type.dtype.itemsize} (a damaged file?)")
  return np.frombuffer(raw, dtype=storage_type.dtype).copy()


def _tensors(tree, path: str) -> dict:
  if not isinstance(tree, dict):
    raise WeightsError(f"{path}: holds a {type(tree).__name__}, not a state dict of tensors")
  return {k: (v.array(f"{path}: tensor {k!r}") if isinstance(v, _View) else v) for k, v in tree.items()}


def read_pth(path: str) -> dict:
  """A torch.save state dict (the zip format of torch >= 1.6, and the legacy format of older files such
  as vgg19-dcbb9e9d.pth), without torch. Every tensor's view is checked against its storage."""
  return _tensors(_read_pth_tree(path), path)


def _read_pth_tree(path: str):
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as z:
      pickles = [n for n in z.namelist() if n.endswith("/data.pkl")]
      if not pickles:
        raise WeightsError(f"{path}: a zip archive without the data.pkl of a torch.save file")
      root = pickles[0][:-len("/data.pkl")]
      cache = {}

      def load_storage(storage_type, key, numel):
        if key not in cache:
          name = f"{root}/data/{key}"
          if name not in z.namelist():
            raise WeightsError(f"{path}: storage {key!r} is missing from the archive")
          cache[key] = _storage(z.read(name), storage_type, numel, f"{path}: storage {key!r}")
        return cache[key]

      return _TensorsOnly(io.BytesIO(z.read(f"{root}/data.pkl")), load_storage).load()
  with open(path, "rb") as f:
    restricted = lambda: _TensorsOnly(f, None)  # noqa: E731
    magic = restricted().load()
    if magic != 0x1950A86A20F9469CFC6C:
      raise WeightsError(f"{path}: not a torch.save file (no zip archive, no legacy magic number)")
    restricted().load()  # protocol version
    restricted().load()  # system info
    pending = {}

    def load_storage(storage_type, key, numel):  # filled in after the pickle, from the storage section
      if key not in pending:
        pending[key] = (storage_type, numel, [])
      box = pending[key][2]
      return lambda: box[0]

    tree = _TensorsOnly(f, load_storage).load()
    for key in restricted().load():
      if str(key) not in pending:
        raise WeightsError(f"{path}: storage {key!r} is not used by any tensor")
      storage_type, numel, box = pending[str(key)]
      count = struct.unpack("<q", f.read(8))[0]
      if count != numel:
        raise WeightsError(f"{path}: storage {key!r} holds {count} elements; its tensors say {numel}")
      box.append(_storage(f.read(max(count, 0) * storage_type.dtype.itemsize), storage_type, numel,
                          f"{path}: storage {key!r}"))
    missing = sorted(k for k, (_, _, box) in pending.items() if not box)
    if missing:
      raise WeightsError(f"{path}: storage {missing[0]!r} is missing from the file (truncated?)")
    return tree


def read_safetensors(path: str) -> dict:
  from safetensors.numpy import load_file
  return load_file(path)


def read_keras_h5(path: str, depth: int) -> dict:
  """keras.applications VGG weights: one group per layer (`block1_conv1`) whose `weight_names`
  attribute lists its kernel [3, 3, in, out] and bias."""
  import h5py
  out = {}
  with h5py.File(path, "r") as f:
    root = f["model_weights"] if "model_weights" in f else f
    for name in vgg.conv_names(depth):
      block, conv = name[4], name.split("_")[1]
      group_name = f"block{block}_conv{conv}"
      if group_name not in root:
        raise WeightsError(f"{path}: no layer {group_name!r} (found {sorted(root.keys())[:6]}...)")
      group = root[group_name]
      weight_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
      kernel, bias = (np.asarray(group[n]) for n in weight_names)
      out[name] = (kernel, bias)
  return out


def read_matconvnet(path: str) -> tuple[dict, tuple[float, float, float] | None]:
  """MatConvNet `imagenet-vgg-verydeep-*.mat` (the file DPED uses): `layers`, a cell of structs with
  name/type/weights. Kernels are stored [W, H, in, out] (DPED's code transposes them to [H, W, in, out])."""
  import scipy.io
  data = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
  if "layers" not in data:
    raise WeightsError(f"{path}: no `layers` cell array; expected a MatConvNet imagenet-vgg-verydeep file")
  out = {}
  for layer in np.atleast_1d(data["layers"]):
    if getattr(layer, "type", None) == "conv" and str(layer.name).startswith("conv"):
      kernel, bias = layer.weights
      out[str(layer.name)] = (np.asarray(kernel).transpose(1, 0, 2, 3), np.asarray(bias).reshape(-1))
  mean = None
  normalization = data.get("normalization") or getattr(data.get("meta"), "normalization", None)
  if normalization is not None and hasattr(normalization, "averageImage"):
    mean = tuple(float(v) for v in np.asarray(normalization.averageImage, np.float64).reshape(-1, 3).mean(0))
  return out, mean


def source_of(path: str) -> str:
  ext = os.path.splitext(path)[1].lower()
  kinds = {".pth": "torchvision", ".pt": "torchvision", ".safetensors": "timm", ".h5": "keras",
           ".mat": "matconvnet"}
  if ext not in kinds:
    raise WeightsError(f"{path}: unknown weights format {ext!r}; expected .pth, .safetensors, .h5 or .mat")
  return kinds[ext]


def read_any(path: str, depth: int) -> tuple[dict, str, Preprocess]:
  """{conv name: (HWIO kernel, bias)}, the source kind, and the preprocessing its weights expect."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"weights file {path} does not exist")
  source = source_of(path)
  preprocess = PREPROCESS[source]
  try:
    if source == "torchvision":
      convs = _torch_features_to_convs(read_pth(path), depth, path)
    elif source == "timm":
      convs = _torch_features_to_convs(read_safetensors(path), depth, path)
    elif source == "keras":
      convs = read_keras_h5(path, depth)
    else:
      convs, mean = read_matconvnet(path)
      if mean is not None:
        preprocess = dataclasses.replace(preprocess, mean=mean)
  except WeightsError:
    raise
  except Exception as e:  # a foreign or damaged file: its reader's own error, whatever its type
    raise WeightsError(f"{path}: not a readable {source} VGG weights file "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
  check(convs, depth, path)
  return convs, source, preprocess


def check(convs: dict, depth: int, path: str):
  for name, (kernel_shape, bias_shape) in expected_shapes(depth).items():
    if name not in convs:
      raise WeightsError(f"{path}: layer {name} is missing (found {sorted(convs)[:6]}...)")
    kernel, bias = convs[name]
    if tuple(kernel.shape) != kernel_shape or tuple(bias.shape) != bias_shape:
      raise WeightsError(f"{path}: layer {name} has kernel {tuple(kernel.shape)} and bias {tuple(bias.shape)}; "
                         f"a VGG-{depth} needs {kernel_shape} and {bias_shape}")
    if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
      raise WeightsError(f"{path}: layer {name} holds non-finite values")


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def convert(arch: str, path: str, *, name: str | None = None, out_dir: str | None = None) -> str:
  """Converts `path` into `out_dir/name/` (atomically) and returns that folder."""
  depth = {"vgg16": 16, "vgg19": 19}.get(arch)
  if depth is None:
    raise WeightsError(f"unknown architecture {arch!r}; expected vgg16 or vgg19")
  convs, source, preprocess = read_any(path, depth)
  return save(convs, arch=arch, source=source, preprocess=preprocess, name=name or f"{arch}_{source}",
              out_dir=out_dir, origin={"source_file": os.path.abspath(path), "source_sha256": _sha256(path)})


def save(convs: dict, *, arch: str, source: str, preprocess: Preprocess, name: str, out_dir: str | None = None,
         origin: dict | None = None) -> str:
  """Writes checked {conv: (HWIO kernel, bias)} as weights `name` (atomically) and returns the folder."""
  depth = {"vgg16": 16, "vgg19": 19}[arch]
  check(convs, depth, name)
  arrays = {}
  for conv, (kernel, bias) in convs.items():
    arrays[f"{conv}/kernel"] = np.asarray(kernel, np.float32)
    arrays[f"{conv}/bias"] = np.asarray(bias, np.float32)

  def fill(tmp):
    np.savez(os.path.join(tmp, "params.npz"), **arrays)
    meta = {"arch": arch, "depth": depth, "source": source, **(origin or {}),
            "preprocess": dataclasses.asdict(preprocess),
            "layers": {k: list(v.shape) for k, v in arrays.items()},
            "params_sha256": _sha256(os.path.join(tmp, "params.npz"))}
    with open(os.path.join(tmp, "meta.json"), "w") as f:
      json.dump(meta, f, indent=2)

  return write_folder(folder_of(name, out_dir), fill)


# An id names one folder inside the weights folder, never a path.
_ID = re.compile(r"[A-Za-z0-9_.-]+")


def folder_of(name: str, out_dir: str | None = None) -> str:
  """The folder of weights `name` in `out_dir` (default `weights_dir()`); `WeightsError` unless `name` is one
  plain name (letters, digits, '_', '.', '-'; not '.' or '..'), so that no id reaches outside that folder."""
  if not isinstance(name, str) or not _ID.fullmatch(name) or name in (".", ".."):
    raise WeightsError(f"--id {name!r} is not an id: one name of letters, digits, '_', '.' and '-' "
                       "(not '.' or '..'); --weights_dir sets the folder it goes in")
  return os.path.join(out_dir or weights_dir(), name)


def _written_by_lle(folder: str) -> bool:
  """Whether `folder` is one that lle converted: VGG weights (meta.json) or a release (release.json)."""
  for marker, key in (("meta.json", "params_sha256"), ("release.json", "mapping")):
    try:
      with open(os.path.join(folder, marker)) as f:
        if key in json.load(f):
          return True
    except (OSError, ValueError, TypeError):
      continue
  return False


def write_folder(folder: str, fill) -> str:
  """Writes `folder` by `fill(new_folder)` into a new folder beside it, then renames that into place: a
  failure leaves whatever was there. An existing folder is replaced only if lle converted it."""
  if os.path.lexists(folder) and (os.path.islink(folder) or not _written_by_lle(folder)):
    raise WeightsError(f"{folder} exists and is not a folder that lle converted (no lle meta.json or "
                       "release.json in it): not replacing it; choose another --id or --weights_dir")
  parent, base = os.path.split(folder)
  os.makedirs(parent or ".", exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f".{base}.new-")
  try:
    fill(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes the folder private; converted weights get the usual mode
    if not os.path.lexists(folder):
      os.rename(tmp, folder)
      return folder
    trash = tempfile.mkdtemp(dir=parent, prefix=f".{base}.old-")
    os.rename(folder, os.path.join(trash, base))
    try:
      os.rename(tmp, folder)
    except OSError:
      os.rename(os.path.join(trash, base), folder)
      raise
    shutil.rmtree(trash, ignore_errors=True)
    return folder
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)


def how_to_get(name: str) -> str:
  arch, _, source = name.partition("_")
  depth = {"vgg16": 16, "vgg19": 19}.get(arch, 19)
  url = OFFICIAL.get(source, OFFICIAL["matconvnet"]).get(depth)
  return (f"convert the official file once: ./launch.sh python -m lle.weights {arch or 'vgg19'} --from FILE "
          f"--id {name} (FILE from {url})")


def preprocess_of(name: str, *, root: str | None = None) -> Preprocess:
  """The input convention of converted weights `name`, from their meta.json alone (no array is read)."""
  meta_file = os.path.join(root or weights_dir(), name, "meta.json")
  if not os.path.exists(meta_file):
    raise FileNotFoundError(f"VGG weights {name!r} not found in {os.path.dirname(meta_file)} (set $LLE_WEIGHTS_DIR); "
                            f"{how_to_get(name)}")
  with open(meta_file) as f:
    p = json.load(f)["preprocess"]
  return Preprocess(bgr=p["bgr"], scale=p["scale"], mean=tuple(p["mean"]), std=tuple(p["std"]))


def load(name: str, *, root: str | None = None) -> tuple[dict, Preprocess, dict]:
  """(Flax params {conv name: {kernel, bias}}, Preprocess, meta) of converted weights `name`."""
  folder = os.path.join(root or weights_dir(), name)
  if not os.path.exists(os.path.join(folder, "meta.json")):
    raise FileNotFoundError(f"VGG weights {name!r} not found in {folder} (set $LLE_WEIGHTS_DIR); {how_to_get(name)}")
  with open(os.path.join(folder, "meta.json")) as f:
    meta = json.load(f)
  params_file = os.path.join(folder, "params.npz")
  if _sha256(params_file) != meta["params_sha256"]:
    raise WeightsError(f"{params_file}: SHA-256 differs from meta.json (a damaged copy?); {how_to_get(name)}")
  params = {}
  with np.load(params_file) as arrays:
    for key in arrays.files:
      conv, leaf = key.split("/")
      params.setdefault(conv, {})[leaf] = arrays[key]
  check({k: (v["kernel"], v["bias"]) for k, v in params.items()}, meta["depth"], params_file)
  p = meta["preprocess"]
  preprocess = Preprocess(bgr=p["bgr"], scale=p["scale"], mean=tuple(p["mean"]), std=tuple(p["std"]))
  return params, preprocess, meta


@cli.reports_errors
def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m lle.weights", description=__doc__.split("\n\n")[0])
  parser.add_argument("arch", choices=["vgg16", "vgg19", "dped", "gladnet"])
  parser.add_argument("--from", dest="source", required=True,
                      help="vgg: .pth, .safetensors, .h5 or .mat file; dped / gladnet: a TF checkpoint prefix or folder")
  parser.add_argument("--id", default=None, help="the name configs use (default: <arch>_<source kind>)")
  parser.add_argument("--weights_dir", default=None, help="default: $LLE_WEIGHTS_DIR or ~/.cache/lle/weights")
  parser.add_argument("--config", default=None, help="dped / gladnet: the config the weights fit "
                      "(default configs/iqe.py:release, configs/gladnet.py)")
  args = parser.parse_args(argv)
  if args.arch in ("dped", "gladnet"):
    return _convert_release(args)
  folder = convert(args.arch, args.source, name=args.id, out_dir=args.weights_dir)
  with open(os.path.join(folder, "meta.json")) as f:
    meta = json.load(f)
  for layer, shape in meta["layers"].items():
    if layer.endswith("/kernel"):
      print(f"{layer[:-len('/kernel')]:<8} {'x'.join(map(str, shape))}")
  print(f"{meta['source']} weights, input {meta['preprocess']}")
  print(f"wrote {folder}  params sha256 {meta['params_sha256']}")
  return 0


def _convert_release(args) -> int:
  from lle import releases
  folder = releases.convert(args.arch, args.source, config_spec=args.config, name=args.id,
                            out_dir=args.weights_dir)
  with open(os.path.join(folder, "release.json")) as f:
    release = json.load(f)
  print(f"{len(release['mapping'])} variables mapped, {len(release['left_out'])} left out (optimiser slots, counters)")
  print(f"wrote {folder}\n  ./launch.sh eval --workdir={folder}   (with its config.json: {release['config']})")
  return 0


if __name__ == "__main__":
  sys.exit(main())

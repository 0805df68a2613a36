"""grain input pipelines over TFDS array_record sources.

Training batches are a pure function of (seed, step): batch `i` is element `i` of a shuffled, repeated,
randomly augmented and batched `grain.MapDataset`, so a resumed run reads exactly the batches an
uninterrupted run would have read. Each host reads its own slice of every global batch.
"""
import os
from typing import Iterator

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds

from lle import color

# Builders that need no user-supplied files: built on first use.
_SELF_CONTAINED = ("lle_demo",)


def _register_builders():
  from lle.data import build
  build.register()  # the demo, lol, mit_fivek and hdr builders


def _prepare_once(builder):
  """Builds under an exclusive file lock, so that parallel runs on one machine (a local sweep) build a
  data set once instead of racing to rename the same folder."""
  import fcntl
  root = os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))  # <data_dir>/<name>
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, ".build.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not builder.is_prepared():  # another process may have built it while we waited
      builder.download_and_prepare()


def data_dir(data_config) -> str | None:
  return data_config.data_dir or os.environ.get("TFDS_DATA_DIR")


def load_source(data_config, split: str):
  """Returns (random-access source, tfds DatasetInfo); builds self-contained data sets on first use."""
  _register_builders()
  builder = tfds.builder(data_config.name, data_dir=data_dir(data_config), file_format="array_record")
  if not builder.is_prepared():
    if builder.name not in _SELF_CONTAINED:
      raise FileNotFoundError(
          f"data set {data_config.name!r} is not built in {builder.data_dir_root}; build it from your "
          f"downloaded copy with `python -m lle.data.build {data_config.name} --manual_dir=DIR`.")
    if jax.process_index() == 0:
      _prepare_once(builder)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"build {data_config.name}")
    # Other processes made their builder before process 0 wrote the data: read its info again.
    builder = tfds.builder(data_config.name, data_dir=data_dir(data_config), file_format="array_record")
  if split not in builder.info.splits:
    raise KeyError(f"data set {data_config.name!r} has no split {split!r}; it has {list(builder.info.splits)}")
  return builder.as_data_source(split), builder.info


def to_float(image: np.ndarray) -> np.ndarray:
  """uint8 -> [0, 1]; uint16 -> [0, 1]; floats unchanged."""
  if image.dtype == np.uint8:
    return image.astype(np.float32) / 255.0
  if image.dtype == np.uint16:
    return image.astype(np.float32) / 65535.0
  return image.astype(np.float32)


def encode_target(image: np.ndarray, encoding: str) -> np.ndarray:
  """Brings a target into the network's [0, 1] output range. `pq`: cd/m^2 -> SMPTE ST 2084 code."""
  if encoding == "pq":
    return np.asarray(color.pq_encode(image.astype(np.float64)), dtype=np.float32)
  if encoding == "none":
    return to_float(image)
  raise ValueError(f"unknown config.data.target_encoding {encoding!r}; expected 'pq' or 'none'")


def make_pair(example, data_config) -> dict[str, np.ndarray]:
  """A stored example -> {'input', 'target'} float32 [H, W, C] in the model's ranges."""
  for key in (data_config.input_feature, data_config.target_feature):
    if key not in example:
      raise KeyError(f"{data_config.name!r} examples have no feature {key!r}; they have {sorted(example)}")
  inp, tgt = example[data_config.input_feature], example[data_config.target_feature]
  if inp.shape[:2] != tgt.shape[:2]:
    raise ValueError(f"{data_config.name!r} example {example.get('name')!r}: input {inp.shape} and "
                     f"target {tgt.shape} differ in size")
  return {"input": to_float(inp), "target": encode_target(tgt, data_config.target_encoding)}


def random_window(example, data_config, rng: np.random.Generator, size: int):
  """Crops input and target features to the same random `size` window *before* any conversion (the
  per-pixel work then scales with the crop, not the photo)."""
  inp = example[data_config.input_feature]
  h, w = inp.shape[:2]
  if h < size or w < size:
    raise ValueError(f"example {example.get('name')!r} of size {h}x{w} is smaller than "
                     f"config.data.crop_size={size}")
  top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
  window = dict(example)
  for key in (data_config.input_feature, data_config.target_feature):
    window[key] = example[key][top:top + size, left:left + size]
  return window


class RandomCropFlip(grain.transforms.RandomMap):
  """Same random crop (and optional horizontal flip) on input and target. With crop_size 100 and no
  flips it is the DPED / IQE recipe (random 100x100 patch pairs, Ignatov et al. 2017 sec. 4)."""

  def __init__(self, data_config):
    self.config = data_config

  def random_map(self, example, rng: np.random.Generator):
    pair = make_pair(random_window(example, self.config, rng, self.config.crop_size), self.config)
    flip = self.config.random_flip and rng.random() < 0.5
    return {k: np.ascontiguousarray(v[:, ::-1] if flip else v) for k, v in pair.items()}


def dihedral(image: np.ndarray, mode: int) -> np.ndarray:
  """One of the 8 flips/rotations of the square: rot90 by mode // 2 quarter turns, then a vertical flip
  if mode is odd (the official GLADNet `data_augmentation` modes 0-7; the same set as NEID's "vertical
  flips and rotations by multiples of 90 degrees")."""
  image = np.rot90(image, mode // 2)
  return np.ascontiguousarray(image[::-1] if mode % 2 else image)


def bicubic_downsample(image: np.ndarray, scale: int) -> np.ndarray:
  """[H, W, C] float -> [ceil(H / scale), ceil(W / scale), C]: MATLAB's `imresize(x, 1 / scale)` (bicubic
  with antialiasing, the degradation super-resolution work uses), clipped to [0, 1]."""
  if scale == 1:
    return image
  from lle.metrics._imresize import resize_matrix
  h, w = image.shape[:2]
  rows = resize_matrix(h, -(-h // scale), 1.0 / scale)
  cols = resize_matrix(w, -(-w // scale), 1.0 / scale)
  out = np.einsum("oh,hwc->owc", rows, image.astype(np.float64))
  out = np.einsum("pw,owc->opc", cols, out)
  return np.clip(out, 0.0, 1.0).astype(np.float32)


class RandomPatchPair(grain.transforms.RandomMap):
  """The paired-patch recipes of the low-light papers (`config.data.recipe`):
    'gladnet': a random `crop_size` patch at the same place in input and target, with the same one of
      the 8 flips/rotations (`dihedral`) applied to both (Wang et al. 2018 sec. III-B / official code).
    'neid': the same, then the input patch is bicubic-downsampled by `input_scale` (Jiang et al. 2021
      sec. 3.2: 256x256 crops, vertical flips and 90-degree rotations, 128x128 model input); the
      target keeps the crop size, and `input_hr` keeps the full-size input patch.
  """

  def __init__(self, data_config):
    self.config = data_config

  def random_map(self, example, rng: np.random.Generator):
    pair = make_pair(random_window(example, self.config, rng, self.config.crop_size), self.config)
    mode = int(rng.integers(0, 8))
    out = {k: dihedral(v, mode) for k, v in pair.items()}
    if self.config.recipe == "neid":
      out["input_hr"] = out["input"]
      out["input"] = bicubic_downsample(out["input"], self.config.input_scale)
    return out


RECIPES = ("crop_flip", "gladnet", "neid", "montulet")


def _recipe(data_config) -> str:
  recipe = data_config.get("recipe", "crop_flip")
  if recipe not in RECIPES:
    raise ValueError(f"unknown config.data.recipe {recipe!r}; expected one of {RECIPES}")
  return recipe


def train_dataset(config) -> grain.MapDataset:
  """This host's batches as a random-access dataset: element i is this host's part of global batch i."""
  data_config = config.data
  source, _ = load_source(data_config, data_config.train_split)
  num_hosts = jax.process_count()
  if config.batch_size % num_hosts:
    raise ValueError(f"config.batch_size={config.batch_size} must divide by the {num_hosts} processes")
  recipe = _recipe(data_config)
  if recipe == "montulet":  # `patches_per_image` draws per stored pair (Montulet & Briassouli sec. 3)
    k = data_config.patches_per_image
    ds = grain.MapDataset.range(len(source) * k).map(lambda i: source[int(i) // k])
  else:
    ds = grain.MapDataset.source(source)
  ds = ds.seed(config.seed).shuffle().repeat(None)
  if recipe == "montulet":
    from lle.data.montulet import MontuletPatch
    ds = ds.random_map(MontuletPatch(data_config, make_pair))
  else:
    ds = ds.random_map(RandomCropFlip(data_config) if recipe == "crop_flip" else RandomPatchPair(data_config))
  ds = ds.batch(config.batch_size, drop_remainder=True)
  # Every host builds the same global batches and keeps its own rows: hosts stay in lock-step and the
  # global batch does not depend on the number of hosts.
  per_host = config.batch_size // num_hosts
  start = jax.process_index() * per_host
  return ds.map(lambda batch: jax.tree.map(lambda x: x[start:start + per_host], batch))


def train_iterator(config, start_step: int) -> Iterator[dict[str, np.ndarray]]:
  """Host-local training batches from `start_step` on, prefetched by threads or worker processes."""
  ds = train_dataset(config)[start_step:].to_iter_dataset(
      grain.ReadOptions(num_threads=config.data.read_threads, prefetch_buffer_size=config.data.prefetch))
  if config.data.worker_count > 0:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.worker_count))
  return iter(ds)


def eval_examples(config) -> list[dict]:
  """The held-out split at full size: a list of {'input', 'target', 'name'}."""
  data_config = config.data
  source, _ = load_source(data_config, data_config.eval_split)
  n = len(source) if data_config.eval_limit is None else min(len(source), data_config.eval_limit)
  out = []
  for i in range(n):
    example = source[i]
    pair = make_pair(example, data_config)
    if _recipe(data_config) == "neid":  # the model sees the bicubic-downsampled input (NEID sec. 3.3)
      pair["input"] = bicubic_downsample(pair["input"], data_config.input_scale)
    name = example.get("name", str(i))
    pair["name"] = name.decode() if isinstance(name, bytes) else str(name)
    out.append(pair)
  return sorted(out, key=lambda e: e["name"])


def dataset_version(config) -> dict:
  _, info = load_source(config.data, config.data.eval_split)
  return {"name": info.name, "config": info.config_name, "version": str(info.version)}

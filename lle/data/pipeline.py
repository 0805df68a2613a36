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
  import lle.data.demo  # noqa: F401  (registers `lle_demo` with TFDS)


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
      builder.download_and_prepare()
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"build {data_config.name}")
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


class RandomCropFlip(grain.transforms.RandomMap):
  """Same random crop (and optional horizontal flip) on input and target."""

  def __init__(self, data_config):
    self.config = data_config

  def random_map(self, example, rng: np.random.Generator):
    pair = make_pair(example, self.config)
    size = self.config.crop_size
    h, w = pair["input"].shape[:2]
    if h < size or w < size:
      raise ValueError(f"example {example.get('name')!r} of size {h}x{w} is smaller than "
                       f"config.data.crop_size={size}")
    top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    flip = self.config.random_flip and rng.random() < 0.5
    out = {}
    for key, image in pair.items():
      image = image[top:top + size, left:left + size]
      out[key] = np.ascontiguousarray(image[:, ::-1] if flip else image)
    return out


def train_dataset(config) -> grain.MapDataset:
  """This host's batches as a random-access dataset: element i is this host's part of global batch i."""
  data_config = config.data
  source, _ = load_source(data_config, data_config.train_split)
  num_hosts = jax.process_count()
  if config.batch_size % num_hosts:
    raise ValueError(f"config.batch_size={config.batch_size} must divide by the {num_hosts} processes")
  ds = grain.MapDataset.source(source).seed(config.seed).shuffle().repeat(None)
  ds = ds.random_map(RandomCropFlip(data_config))
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
    name = example.get("name", str(i))
    pair["name"] = name.decode() if isinstance(name, bytes) else str(name)
    out.append(pair)
  return sorted(out, key=lambda e: e["name"])


def dataset_version(config) -> dict:
  _, info = load_source(config.data, config.data.eval_split)
  return {"name": info.name, "config": info.config_name, "version": str(info.version)}

"""grain input pipelines over TFDS array_record sources.

Training batches are a pure function of (seed, step): batch `i` is element `i` of a shuffled, repeated,
randomly augmented and batched `grain.MapDataset`, so a resumed run reads exactly the batches an
uninterrupted run would have read. Each host decodes only its own rows of every global batch.
"""
import collections
import os
import sys
import threading
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
      if not sys.stderr.isatty():  # TFDS's progress bars would fill a log file with redraws
        tfds.disable_progress_bar()
      print(f"building {builder.info.full_name} into {builder.data_dir} (first use) ...", flush=True)
      builder.download_and_prepare()


def data_dir(data_config) -> str | None:
  return data_config.data_dir or os.environ.get("TFDS_DATA_DIR")


def check_built(data_config):
  """(TFDS builder, whether it is built) of the configured data set, reading and building nothing; a
  data set that lle cannot build itself (from user-supplied files) and that is not built is an error
  naming the command that builds it."""
  _register_builders()
  builder = tfds.builder(data_config.name, data_dir=data_dir(data_config), file_format="array_record")
  from lle import cli
  with cli.quiet_library_logs():  # TFDS warns that a data set it does not find has no dataset_info.json
    prepared = builder.is_prepared()
  if not prepared and builder.name not in _SELF_CONTAINED:
    where = f" --data_dir={data_dir(data_config)}" if data_dir(data_config) else ""
    raise FileNotFoundError(
        f"data set {data_config.name!r} is not built in {builder.data_dir_root}; build it from your "
        f"downloaded copy with `./launch.sh python -m lle.data.build {data_config.name} --manual_dir=DIR{where}`")
  return builder, prepared


def load_source(data_config, split: str):
  """Returns (random-access source, tfds DatasetInfo); builds self-contained data sets on first use."""
  builder, prepared = check_built(data_config)
  if not prepared:
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


class CachedSource:
  """A random-access source that keeps the most recently read examples, decoded, up to `max_mb` of their
  arrays (least recently used out). Reading a stored photo (decompressing the record and its features)
  costs far more than cropping it, and a small data set is read again and again: with the whole set in
  the cache only the first epoch reads from disk. The examples are what the source gives (made
  read-only, so a transform cannot change a cached copy), so batches do not depend on the cache. Each
  grain worker process keeps its own cache."""

  def __init__(self, source, max_mb: float):
    self.source, self.max_bytes = source, int(max_mb * 2**20)
    self._init_cache()

  def _init_cache(self):
    self._examples, self._bytes, self._lock = collections.OrderedDict(), 0, threading.Lock()
    self.hits = self.misses = 0

  def __getstate__(self):  # worker processes start with an empty cache (and their own lock)
    return {"source": self.source, "max_bytes": self.max_bytes}

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._init_cache()

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index):
    index = int(index)
    with self._lock:
      example = self._examples.get(index)
      if example is not None:
        self._examples.move_to_end(index)
        self.hits += 1
        return example
    example = self.source[index]
    size = 0
    for value in example.values():
      if isinstance(value, np.ndarray):
        value.setflags(write=False)
        size += value.nbytes
    with self._lock:
      self.misses += 1
      if size <= self.max_bytes and index not in self._examples:
        self._examples[index] = example
        self._bytes += size
        while self._bytes > self.max_bytes:
          _, old = self._examples.popitem(last=False)
          self._bytes -= sum(v.nbytes for v in old.values() if isinstance(v, np.ndarray))
    return example


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
    return color.pq_encode(image.astype(np.float64), xp=np).astype(np.float32)
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


def bicubic_downsample(image: np.ndarray, scale: int, *, rows_per_chunk: int = 64) -> np.ndarray:
  """[H, W, C] -> [ceil(H / scale), ceil(W / scale), C] float32: MATLAB's `imresize(x, 1 / scale)` (bicubic
  with antialiasing, the degradation super-resolution work uses), clipped to [0, 1]. Integer images are
  read as `to_float` does. Works `rows_per_chunk` output rows at a time, so a large photo never exists in
  float64 as a whole."""
  if scale == 1:
    return to_float(image)
  from lle.metrics._imresize import contributions
  h, w = image.shape[:2]
  oh, ow = -(-h // scale), -(-w // scale)
  row_weights, row_index = contributions(h, oh, 1.0 / scale)
  col_weights, col_index = contributions(w, ow, 1.0 / scale)
  out = np.empty((oh, ow) + image.shape[2:], np.float32)
  for start in range(0, oh, rows_per_chunk):
    stop = min(start + rows_per_chunk, oh)
    index = row_index[start:stop]
    lo, hi = int(index.min()), int(index.max()) + 1
    rows = to_float(image[lo:hi]).astype(np.float64)
    strip = np.einsum("ot,ot...->o...", row_weights[start:stop], rows[index - lo])
    strip = np.einsum("pt,opt...->op...", col_weights, strip[:, col_index])
    out[start:stop] = np.clip(strip, 0.0, 1.0)
  return out


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
  if data_config.cache_mb > 0:
    source = CachedSource(source, data_config.cache_mb)
  num_hosts = jax.process_count()
  if config.batch_size % num_hosts:
    raise ValueError(f"config.batch_size={config.batch_size} must divide by the {num_hosts} processes")
  recipe = _recipe(data_config)
  if recipe == "montulet":  # `patches_per_image` draws per stored pair (Montulet & Briassouli sec. 3)
    from lle.data import montulet
    ds = montulet.patch_stream(source, data_config, make_pair, config.seed)
  else:
    ds = grain.MapDataset.source(source).seed(config.seed).shuffle().repeat(None)
    ds = ds.random_map(RandomCropFlip(data_config) if recipe == "crop_flip" else RandomPatchPair(data_config))
  return _host_batches(ds, config.batch_size, num_hosts, jax.process_index())


def _host_batches(examples: grain.MapDataset, batch_size: int, num_hosts: int, host: int) -> grain.MapDataset:
  """Element i: rows [host * B/H, (host + 1) * B/H) of global batch i, which is examples
  [i * B, (i + 1) * B) of the (infinite, random-access) augmented stream. Each host decodes and augments
  only its own rows, so the decoding work per host falls as hosts are added, while every example (and its
  augmentation, seeded by its index) is the one a single host would have drawn: batches stay a pure
  function of (seed, step), the same for any number of hosts."""
  per_host = batch_size // num_hosts
  first = host * per_host

  def host_rows(i):
    rows = [examples[int(i) * batch_size + first + r] for r in range(per_host)]
    return jax.tree.map(lambda *xs: np.stack(xs), *rows)

  return grain.MapDataset.range(len(examples) // batch_size).map(host_rows)


MAX_AUTO_WORKERS = 16


def worker_count(data_config, *, platform: str | None = None, cpus: int | None = None) -> int:
  """`config.data.worker_count`, with -1 resolved for this machine: 0 when the train step runs on the
  CPU (it uses every core; worker processes would only take cores from it), else all cores but two (the
  main process feeds the accelerator), at most MAX_AUTO_WORKERS."""
  count = data_config.worker_count
  if count >= 0:
    return count
  if count != -1:
    raise ValueError(f"config.data.worker_count={count}: expected -1 (by machine) or a count >= 0")
  platform = platform or jax.default_backend()
  cpus = cpus or len(os.sched_getaffinity(0))
  return 0 if platform == "cpu" else max(0, min(cpus - 2, MAX_AUTO_WORKERS))


def train_iterator(config, start_step: int) -> Iterator[dict[str, np.ndarray]]:
  """Host-local training batches from `start_step` on, prefetched by threads or worker processes."""
  ds = train_dataset(config)[start_step:].to_iter_dataset(
      grain.ReadOptions(num_threads=config.data.read_threads, prefetch_buffer_size=config.data.prefetch))
  workers = worker_count(config.data)
  if workers > 0:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(ds)


def _decoded_name(example, index) -> str:
  name = example.get("name", str(index))
  return name.decode() if isinstance(name, bytes) else str(name)


class EvalSet:
  """The held-out split (or a set without references, `no_target`), read one example at a time, grouped
  by size.

  An index pass reads only each example's name and image shapes (TFDS hands zlib-coded tensors over
  undecoded with their shape, `tfds.decode.SkipDecoding`), so the split is never in memory as a whole.
  `batches(n)` yields lists of at most n examples whose input and target shapes agree: same-size images
  share one compiled model and metric call. Examples are {'input', 'target', 'name'} as `make_pair`
  gives them (NEID's input bicubic-downsampled, as in its evaluation).
  """

  def __init__(self, source, data_config, *, shapes_source=None, limit=None, no_target=False, seed=0):
    self.source, self.data_config, self.no_target, self.seed = source, data_config, no_target, seed
    peek = shapes_source if shapes_source is not None else source
    n = len(source) if limit is None else min(len(source), limit)
    keys = (data_config.input_feature,) + (() if no_target else (data_config.target_feature,))
    self.entries = []  # (index, name, input shape, target shape or None)
    for i in range(n):
      example = peek[i]
      for key in keys:
        if key not in example:
          raise KeyError(f"{data_config.name!r} examples have no feature {key!r}; they have {sorted(example)}")
      shapes = [_shape(example[k]) for k in keys]
      self.entries.append((i, _decoded_name(example, i), shapes[0], shapes[1] if len(shapes) > 1 else None))
    self.entries.sort(key=lambda e: e[1])

  def __len__(self) -> int:
    return len(self.entries)

  @property
  def names(self) -> list[str]:
    return [e[1] for e in self.entries]

  def load(self, index: int) -> dict:
    """{'input', 'target', 'name'}; a set without targets gives {'input', 'name', 'size'}, `size` being
    the photo's (h, w) before NEID's downsampling, the size its output is scored at."""
    example = self.source[index]
    if self.no_target:
      photo = example[self.data_config.input_feature]
      pair = {"input": to_float(photo), "size": photo.shape[:2]}
    else:
      pair = make_pair(example, self.data_config)
    recipe = _recipe(self.data_config)
    if recipe == "neid":  # the model sees the bicubic-downsampled input (NEID sec. 3.3)
      pair["input"] = bicubic_downsample(pair["input"], self.data_config.input_scale)
    pair["name"] = _decoded_name(example, index)
    if self.data_config.get("darken_eval", False) and not self.no_target:
      from lle.data import montulet  # held-out inputs darkened once each (Montulet & Briassouli sec. 4)
      c = self.data_config
      divisor = montulet.eval_divisor(pair["name"], self.seed, c.darken_min, c.darken_max)
      pair["input"] = montulet.darken_input(pair["input"], divisor, c)
    return pair

  def __iter__(self):
    for index, *_ in self.entries:
      yield self.load(index)

  def batches(self, size: int):
    """Lists of at most `size` same-shape examples; buckets in order of their first name."""
    buckets = {}
    for index, _, in_shape, target_shape in self.entries:
      buckets.setdefault((in_shape, target_shape), []).append(index)
    for indices in buckets.values():
      for start in range(0, len(indices), size):
        yield [self.load(i) for i in indices[start:start + size]]


def _shape(feature) -> tuple:
  """An image feature's shape, decoded (an array) or skipped ({'shape', 'value'})."""
  if isinstance(feature, dict) and "shape" in feature:
    return tuple(int(d) for d in feature["shape"])
  return tuple(np.shape(feature))


def eval_set(config) -> EvalSet:
  """The held-out split (`config.data.eval_split`, first `eval_limit` by index) as an `EvalSet`."""
  data_config = config.data
  source, info = load_source(data_config, data_config.eval_split)
  skip = {k: tfds.decode.SkipDecoding() for k in (data_config.input_feature, data_config.target_feature)
          if isinstance(info.features[k], tfds.features.Tensor)}
  shapes = _as_data_source(data_config, data_config.eval_split, decoders=skip) if skip else None
  return EvalSet(source, data_config, shapes_source=shapes, limit=data_config.eval_limit, seed=config.seed)


class FolderSource:
  """A folder of 8-bit image files as a random-access source of {'low', 'name'} examples."""
  SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

  def __init__(self, folder):
    self.folder = folder
    if not os.path.isdir(folder):
      raise FileNotFoundError(f"no-reference folder {folder} does not exist")
    self.files = sorted(f for f in os.listdir(folder) if f.lower().endswith(self.SUFFIXES) and not f.startswith("."))
    if not self.files:
      raise FileNotFoundError(f"no-reference folder {folder} holds no {', '.join(self.SUFFIXES)} files")

  def __len__(self):
    return len(self.files)

  def __getitem__(self, i):
    from lle.data.errors import BadFileError
    from lle.data.lowlight_nr.builder import decode_rgb8
    from etils import epath
    path = epath.Path(self.folder) / self.files[i]
    try:
      return {"low": decode_rgb8(path), "name": self.files[i]}
    except BadFileError as e:
      raise ValueError(f"no-reference folder: {e}") from e


def no_reference_sets(config) -> dict:
  """`config.eval.no_reference` as {set name: EvalSet without targets}: TFDS names (`lowlight_nr/lime`)
  or `folder:PATH` entries (every image of a folder)."""
  import ml_collections
  out = {}
  for entry in config.eval.get("no_reference", ()):
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    data_config.input_feature = "low"
    if entry.startswith("folder:"):
      folder = entry[len("folder:"):]
      data_config.name = entry
      out[os.path.basename(os.path.normpath(folder)) or folder] = EvalSet(FolderSource(folder), data_config,
                                                                            no_target=True)
      continue
    data_config.name = entry
    source, info = load_source(data_config, "test")
    skip = {"low": tfds.decode.SkipDecoding()} if isinstance(info.features["low"], tfds.features.Tensor) else {}
    shapes = _as_data_source(data_config, "test", decoders=skip) if skip else None
    out[entry.replace("/", "_")] = EvalSet(source, data_config, shapes_source=shapes, no_target=True)
  return out


def _as_data_source(data_config, split, **kwargs):
  builder = tfds.builder(data_config.name, data_dir=data_dir(data_config), file_format="array_record")
  return builder.as_data_source(split, **kwargs)


def eval_examples(config) -> list[dict]:
  """The whole held-out split in memory, by name (small splits; evaluation streams `eval_set`)."""
  return list(eval_set(config))


def dataset_version(config) -> dict:
  """Which data set a run used; "partial" says what a build made with --skip_bad / --allow_subset left out."""
  from lle.data import errors
  _, info = load_source(config.data, config.data.eval_split)
  partial = errors.partial_build(info)
  return {"name": info.name, "config": info.config_name, "version": str(info.version),
          **({"partial": errors.describe_partial(partial)} if partial.get("skipped") or partial.get("subset") else {})}

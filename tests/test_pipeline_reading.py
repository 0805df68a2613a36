"""Reading speed-ups of the training pipeline: the decoded-example cache (pipeline.CachedSource,
config.data.cache_mb), host-side PQ coding, worker counts by machine."""
import pickle

import numpy as np
import pytest

from lle import color
from lle.data import pipeline
from tests.conftest import load_config


class CountingSource:
  """A random-access source of 10 examples of 1 MB each that counts its reads."""

  def __init__(self):
    self.reads = []

  def __len__(self):
    return 10

  def __getitem__(self, i):
    self.reads.append(int(i))
    return {"image": np.full((512, 512), i, np.float32), "name": f"ex{i}"}


def test_a_set_that_fits_is_read_once_and_cached_arrays_are_read_only():
  source = CountingSource()
  cached = pipeline.CachedSource(source, max_mb=16)
  order = [3, 1, 3, 7, 1, 1, 9, 3]
  out = [cached[i] for i in order]
  assert source.reads == [3, 1, 7, 9]
  assert (cached.hits, cached.misses) == (4, 4)
  assert [int(o["image"][0, 0]) for o in out] == order
  with pytest.raises(ValueError, match="read-only"):
    out[0]["image"][0, 0] = 5.0


def test_least_recently_used_examples_leave_when_the_budget_is_full():
  source = CountingSource()
  cached = pipeline.CachedSource(source, max_mb=2.5)  # room for two 1 MB examples
  for i in (0, 1, 0, 2, 1, 0):  # 2 evicts 1 (0 was used after 1); then 1 evicts 0; then 0 is read again
    cached[i]
  assert source.reads == [0, 1, 2, 1, 0]
  assert cached._bytes <= 2.5 * 2**20


def test_a_pickled_cache_starts_empty():
  cached = pipeline.CachedSource(CountingSource(), max_mb=16)
  cached[0]
  copy = pickle.loads(pickle.dumps(cached))  # what a grain worker process receives
  assert (copy.hits, copy.misses, len(copy._examples)) == (0, 0, 0)
  copy[0]
  assert copy.source.reads[-1] == 0 and copy.misses == 1


@pytest.mark.parametrize("spec", ["configs/itmn.py:tiny", "configs/neid.py:tiny"])
def test_batches_are_the_same_with_and_without_the_cache(spec):
  config = load_config(spec)
  plain = pipeline.train_dataset(config)
  with config.unlocked():
    config.data.cache_mb = 64
  cached = pipeline.train_dataset(config)
  for step in (0, 1, 2, 3, 0, 9):  # the tiny sets hold a few photos: later steps hit the cache
    for key in plain[step]:
      np.testing.assert_array_equal(cached[step][key], plain[step][key])


def test_host_pq_encoding_matches_the_jax_one():
  nits = np.geomspace(1e-3, 2e4, 101)
  host = color.pq_encode(nits, xp=np)
  assert host.dtype == np.float64 and host.max() == 1.0
  # JAX computes in float32: the power 78.84 turns its 6e-8 rounding into ~1e-5 relative error
  np.testing.assert_allclose(host, np.asarray(color.pq_encode(nits)), rtol=3e-5, atol=1e-7)


def test_worker_count_by_machine():
  import ml_collections
  auto = ml_collections.ConfigDict({"worker_count": -1})
  assert pipeline.worker_count(auto, platform="cpu", cpus=64) == 0  # the step needs the cores
  assert pipeline.worker_count(auto, platform="gpu", cpus=16) == 14
  assert pipeline.worker_count(auto, platform="gpu", cpus=2) == 0
  assert pipeline.worker_count(auto, platform="tpu", cpus=240) == pipeline.MAX_AUTO_WORKERS
  assert pipeline.worker_count(ml_collections.ConfigDict({"worker_count": 3}), platform="cpu") == 3
  with pytest.raises(ValueError, match="worker_count=-2"):
    pipeline.worker_count(ml_collections.ConfigDict({"worker_count": -2}))

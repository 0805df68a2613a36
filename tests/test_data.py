import numpy as np

from lle import color
from lle.data import pipeline
from lle.data.demo import TEST_PHOTOS, builder
from lle.data.hdr import tonemap
from tests.conftest import load_config


def test_demo_splits_hold_out_whole_photos():
  config = load_config("configs/itmn.py:tiny")
  train, info = pipeline.load_source(config.data, "train")
  test, _ = pipeline.load_source(config.data, "test")
  assert info.version == "2.0.0"
  assert len(test) == len(TEST_PHOTOS)
  assert len(train) == (len(builder.PHOTOS) - len(TEST_PHOTOS)) * builder.TRAIN_VARIANTS
  photo = lambda ex: ex["name"].decode().rsplit("_", 1)[0]
  assert {photo(test[i]) for i in range(len(test))} == set(TEST_PHOTOS)
  assert not {photo(train[i]) for i in range(len(train))} & set(TEST_PHOTOS)
  ex = test[0]
  assert ex["ldr"].dtype == np.uint8 and ex["hdr"].dtype == np.float32
  assert ex["ldr"].shape == ex["hdr"].shape
  assert builder.MIN_NITS <= ex["hdr"].min() and ex["hdr"].max() <= builder.PEAK_NITS
  # The stored input is exactly the example's drawn operator on the stored HDR target, and the examples
  # do not all share one operator.
  for i in range(len(test)):
    tone_map = tonemap.draw(test[i]["name"].decode(), builder.TONE_MAP_SEED)
    assert test[i]["operator"].decode() == str(tone_map)
    np.testing.assert_array_equal(test[i]["ldr"], tonemap.to_ldr(tone_map, test[i]["hdr"]))
  families = {train[i]["operator"].decode().split("(")[0] for i in range(len(train))}
  assert families == {"reinhard", "drago", "camera"}


def test_reinhard_global_maps_log_average_to_key():
  rng = np.random.default_rng(0)
  hdr = rng.lognormal(0.0, 1.5, size=(16, 16, 3))
  out = np.asarray(color.reinhard_global(hdr, key=0.18, white=1e9))  # white -> inf: L / (1 + L)
  lum = np.asarray(color.luminance(hdr))
  scaled = 0.18 / np.exp(np.mean(np.log(1e-6 + lum))) * lum
  unclipped = out.max(axis=-1) < 1.0  # colour is carried by RGB * L_d / L_w, then clipped to [0, 1]
  assert unclipped.mean() > 0.5
  np.testing.assert_allclose(np.asarray(color.luminance(out))[unclipped], (scaled / (1 + scaled))[unclipped],
                             rtol=1e-5)


def test_pq_round_trip_and_reference_points():
  nits = np.asarray([0.0, 0.1, 100.0, 1000.0, 10000.0])
  code = np.asarray(color.pq_encode(nits))
  # BT.2100 reference code values: 100 cd/m^2 -> 0.5081, 1000 -> 0.7518, 10000 -> 1.
  np.testing.assert_allclose(code[[2, 3, 4]], [0.5081, 0.7518, 1.0], atol=2e-4)
  np.testing.assert_allclose(np.asarray(color.pq_decode(code)), nits, rtol=1e-4, atol=1e-6)


def test_train_batches_are_a_function_of_seed_and_step():
  config = load_config("configs/itmn.py:tiny")
  a = pipeline.train_dataset(config)
  b = pipeline.train_dataset(config)
  for step in (0, 5, 37):
    for key in ("input", "target"):
      np.testing.assert_array_equal(a[step][key], b[step][key])
  assert a[0]["input"].shape == (config.batch_size, 32, 32, 3)
  assert a[0]["target"].dtype == np.float32 and 0 <= a[0]["target"].min() and a[0]["target"].max() <= 1
  assert not np.array_equal(a[0]["input"], a[1]["input"])
  # Resuming at step 5 yields what an uninterrupted iterator yields at its 6th batch.
  resumed = next(pipeline.train_iterator(config, 5))
  np.testing.assert_array_equal(resumed["input"], a[5]["input"])
  with config.unlocked():
    config.seed = 1
  assert not np.array_equal(pipeline.train_dataset(config)[0]["input"], a[0]["input"])


def test_paper_config_needs_its_data_built_and_says_how():
  import pytest
  config = load_config("configs/itmn.py")
  with pytest.raises(FileNotFoundError, match=r"'hdr/mixture' is not built.*python -m lle.data.build hdr/mixture"):
    pipeline.load_source(config.data, "train")


def test_parallel_first_use_builds_once(tmp_path):
  """Two runs of a local sweep starting together: one builds, the other waits and reuses it."""
  import threading
  import time

  class FakeBuilder:
    data_dir = str(tmp_path / "lle_demo" / "itmn" / "1.0.0")
    info = type("Info", (), {"full_name": "lle_demo/itmn/1.0.0"})  # named in the "building ..." line
    builds = 0

    def is_prepared(self):
      return FakeBuilder.builds > 0

    def download_and_prepare(self):
      time.sleep(0.3)  # long enough for the second thread to arrive while the first builds
      FakeBuilder.builds += 1

  threads = [threading.Thread(target=pipeline._prepare_once, args=(FakeBuilder(),)) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert FakeBuilder.builds == 1


def test_demo_builder_writes_array_record_when_built_through_tfds_alone(tmp_path):
  """`tfds.builder("lle_demo/lowlight").download_and_prepare()` outside lle: TFDS's default, TFRecord,
  needs TensorFlow to write, which lle does not install."""
  import tensorflow_datasets as tfds
  for name in ("lle_demo/lowlight", "lle_demo/itmn"):
    assert tfds.builder(name, data_dir=str(tmp_path)).info.file_format == tfds.core.FileFormat.ARRAY_RECORD

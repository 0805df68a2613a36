"""`lle_demo/lowlight` and the low-light training recipes of lle.data.pipeline."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lle import color
from lle.data import pipeline
from lle.data.demo import TEST_PHOTOS, builder
from lle.metrics._imresize import imresize
from tests.conftest import load_config


def _data_config(recipe, crop_size, input_scale=2):
  c = ml_collections.ConfigDict()
  c.name = "fake"
  c.input_feature, c.target_feature, c.target_encoding = "low", "high", "none"
  c.recipe, c.crop_size, c.input_scale = recipe, crop_size, input_scale
  return c


def _example(h=400, w=600, seed=0):
  rng = np.random.default_rng(seed)
  high = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  return {"low": high.copy(), "high": high, "name": b"x"}


def test_lowlight_splits_versions_and_pairs():
  config = load_config("configs/gladnet.py:tiny")
  train, info = pipeline.load_source(config.data, "train")
  test, _ = pipeline.load_source(config.data, "test")
  assert (info.name, info.config_name, str(info.version)) == ("lle_demo", "lowlight", "2.1.0")
  assert len(train) == (len(builder.PHOTOS) - len(TEST_PHOTOS)) * builder.LOWLIGHT_TRAIN_VARIANTS
  photo = lambda ex: ex["name"].decode().rsplit("_", 1)[0]
  assert {photo(test[i]) for i in range(len(test))} == set(TEST_PHOTOS)
  assert not {photo(train[i]) for i in range(len(train))} & set(TEST_PHOTOS)
  for ex in (test[0], train[5]):
    assert ex["low"].dtype == ex["high"].dtype == np.uint8 and ex["low"].shape == ex["high"].shape
    # The target is the (downscaled) photo itself, the input a darker capture of it.
    np.testing.assert_array_equal(ex["high"], builder._downscale(builder.load_photo(photo(ex))))
    ratio = color.srgb_to_linear(ex["low"] / 255.0).mean() / color.srgb_to_linear(ex["high"] / 255.0).mean()
    assert 1 / 20 * 0.8 < float(ratio) < 1 / 3 * 1.2


def test_training_exposures_are_stratified_over_the_range():
  bins = [builder.exposure_bin(v, builder.LOWLIGHT_TRAIN_VARIANTS) for v in range(builder.LOWLIGHT_TRAIN_VARIANTS)]
  assert bins[0][0] == pytest.approx(builder.EXPOSURE_RANGE[0]) and bins[-1][1] == pytest.approx(builder.EXPOSURE_RANGE[1])
  assert all(a[1] == pytest.approx(b[0]) for a, b in zip(bins, bins[1:]))  # contiguous, equal in log
  assert len({round(np.log(hi / lo), 9) for lo, hi in bins}) == 1
  config = load_config("configs/gladnet.py:tiny")
  train, _ = pipeline.load_source(config.data, "train")
  seen = {}
  for i in range(len(train)):
    name = train[i]["name"].decode()
    photo, variant = name.rsplit("_", 1)
    seen.setdefault(photo, set()).add(int(variant))
    if photo == "hubble_deep_field":
      continue  # a near-black sky: read noise clipped at 0 lifts its mean past the exposure's
    low, high = bins[int(variant)]
    linear = lambda key: color.srgb_to_linear(train[i][key] / 255.0).mean()
    ratio = float(linear("low") / linear("high"))
    assert low * 0.95 < ratio < high * 1.05, (name, ratio, (low, high))
  assert all(v == set(range(builder.LOWLIGHT_TRAIN_VARIANTS)) for v in seen.values())


def test_itmn_config_version_and_features():
  config = load_config("configs/itmn.py:tiny")
  source, info = pipeline.load_source(config.data, "test")
  assert str(info.version) == "2.0.0" and set(source[0]) == {"ldr", "hdr", "name", "operator"}


def test_darken_is_poisson_gaussian_and_deterministic():
  flat = np.full((200, 200, 3), 200, np.uint8)
  a = builder.darken(flat, np.random.default_rng(1))
  np.testing.assert_array_equal(a, builder.darken(flat, np.random.default_rng(1)))
  rng = np.random.default_rng(1)
  exposure = np.exp(rng.uniform(np.log(builder.EXPOSURE_RANGE[0]), np.log(builder.EXPOSURE_RANGE[1])))
  signal = float(color.srgb_to_linear(200 / 255.0)) * exposure
  linear = np.asarray(color.srgb_to_linear(a / 255.0))
  assert linear.mean() == pytest.approx(signal, rel=0.05)
  # Shot + read noise variance: signal / photons + read^2 (quantisation adds a little).
  expected_std = np.sqrt(signal / builder.PHOTONS_AT_WHITE + builder.READ_NOISE**2)
  assert linear.std() == pytest.approx(expected_std, rel=0.25)


def test_dihedral_gives_the_eight_distinct_transforms():
  x = np.arange(9).reshape(3, 3)
  outs = {pipeline.dihedral(x, m).tobytes() for m in range(8)}
  assert len(outs) == 8
  np.testing.assert_array_equal(pipeline.dihedral(x, 1), x[::-1])
  np.testing.assert_array_equal(pipeline.dihedral(x, 2), np.rot90(x))


def test_gladnet_recipe_same_patch_and_transform_on_both():
  transform = pipeline.RandomPatchPair(_data_config("gladnet", 384))
  ex = _example()
  ex["low"] = ex["high"] // 2  # a pixel-wise function of the target: any misalignment breaks it
  seen = set()
  for seed in range(12):
    out = transform.random_map(ex, np.random.default_rng(seed))
    assert out["input"].shape == out["target"].shape == (384, 384, 3)
    np.testing.assert_array_equal(np.round(out["input"] * 255), np.round(out["target"] * 255) // 2)
    again = transform.random_map(ex, np.random.default_rng(seed))
    np.testing.assert_array_equal(out["target"], again["target"])
    seen.add(out["target"].tobytes())
  assert len(seen) == 12
  # Each patch is one of the 8 transforms of a window of the image: a transform of the top-left corner
  # pixel's window of a position-coded image.
  h, w = 400, 600
  yy, xx = np.mgrid[0:h, 0:w]
  coded = np.stack([yy % 256, xx % 256, (yy // 256) * 4 + xx // 256], -1).astype(np.uint8)
  out = transform.random_map({"low": coded, "high": coded, "name": b"c"}, np.random.default_rng(5))
  patch = np.round(out["target"] * 255).astype(int)
  pos = lambda p: (p[..., 2] // 4 * 256 + p[..., 0], p[..., 2] % 4 * 256 + p[..., 1])
  ys, xs = pos(patch)
  top, left = ys.min(), xs.min()
  window = coded[top:top + 384, left:left + 384]
  assert any(np.array_equal(pipeline.dihedral(window, m), patch) for m in range(8))


def test_neid_recipe_shapes_and_bicubic_input():
  transform = pipeline.RandomPatchPair(_data_config("neid", 256, input_scale=2))
  ex = _example(seed=1)
  ex["low"] = ex["high"] // 4  # a darker, pixel-wise function of the target: a swap or misalignment shows
  out = transform.random_map(ex, np.random.default_rng(0))
  assert out["input"].shape == (128, 128, 3) and out["target"].shape == (256, 256, 3)
  assert out["input_hr"].shape == (256, 256, 3)
  again = transform.random_map(ex, np.random.default_rng(0))
  for k in out:
    np.testing.assert_array_equal(out[k], again[k])
  # `input_hr` is the full-size *low* patch at the target's place and orientation.
  np.testing.assert_array_equal(np.round(out["input_hr"] * 255), np.round(out["target"] * 255) // 4)
  # The input is MATLAB bicubic (antialiased) of that low patch, not of the target.
  ref = np.clip(np.asarray(imresize(jnp.moveaxis(jnp.asarray(out["input_hr"]), -1, 0), 0.5)), 0, 1)
  np.testing.assert_allclose(out["input"], np.moveaxis(ref, 0, -1), atol=1e-5)
  # scale 1 (the plain U-Net ablation): the input is the low patch itself.
  same = pipeline.RandomPatchPair(_data_config("neid", 256, input_scale=1)).random_map(ex, np.random.default_rng(0))
  assert same["input"].shape == (256, 256, 3)
  np.testing.assert_array_equal(np.round(same["input"] * 255), np.round(same["target"] * 255) // 4)


def test_bicubic_downsample_odd_sizes_round_up():
  x = np.full((301, 451, 3), 0.25, np.float32)
  y = pipeline.bicubic_downsample(x, 2)
  assert y.shape == (151, 226, 3)
  np.testing.assert_allclose(y, 0.25, atol=1e-6)


def test_unknown_recipe_is_named():
  config = load_config("configs/gladnet.py:tiny")
  with config.unlocked():
    config.data.recipe = "nope"
  with pytest.raises(ValueError, match="recipe 'nope'"):
    pipeline.train_dataset(config)


def test_gladnet_train_batches_are_deterministic():
  config = load_config("configs/gladnet.py:tiny")
  a, b = pipeline.train_dataset(config), pipeline.train_dataset(config)
  for step in (0, 3):
    np.testing.assert_array_equal(a[step]["input"], b[step]["input"])
    np.testing.assert_array_equal(a[step]["target"], b[step]["target"])
  assert a[0]["input"].shape == a[0]["target"].shape == (config.batch_size, 32, 32, 3)


def test_bicubic_downsample_matches_pil_away_from_the_border():
  """PIL's antialiased bicubic (a = -0.5, support scaled by the factor) is MATLAB's imresize kernel; the two
  differ only within the kernel's reach of the border (MATLAB mirrors, PIL renormalises the weights)."""
  from PIL import Image
  rng = np.random.default_rng(0)
  x = (rng.random((64, 96, 3)) * 0.8 + 0.1).astype(np.float32)
  ours = pipeline.bicubic_downsample(x, 2)
  pil = np.stack([np.asarray(Image.fromarray(x[..., c], mode="F").resize((48, 32), Image.Resampling.BICUBIC))
                  for c in range(3)], axis=-1)
  np.testing.assert_allclose(ours[4:-4, 4:-4], pil[4:-4, 4:-4], atol=1e-5)
  assert np.abs(ours - pil).max() > 1e-3  # the borders do differ: the comparison is not vacuous

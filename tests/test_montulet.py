import ml_collections
import numpy as np
import skimage.color
import skimage.data

from lle.data import montulet


def test_darkening_on_known_pixel_values():
  x = np.array([0.0, 0.5, 1.0])
  # (0.5^2.2 / 4)^(1/2.2) = 0.5 * 4^(-1/2.2) = 0.26626; white / 128 -> 128^(-1/2.2) = 0.11020
  np.testing.assert_allclose(montulet.darken(x, 4), [0.0, 0.5 * 4 ** (-1 / 2.2), 4 ** (-1 / 2.2)], rtol=1e-12)
  np.testing.assert_allclose(montulet.darken(x, 128)[2], 0.110199, atol=1e-6)
  np.testing.assert_allclose(montulet.darken(x, 1), x)


def test_saved_darkened_inputs_keep_the_8bit_levels_the_paper_had():
  """Sec. 4: the darkened images are saved (8-bit): at a divisor of 128 the 256 input levels fall onto the
  29 codes 0..28 (white -> 128^(-1/2.2) = 0.1102 -> 28.1), each read back as k / 255."""
  ramp = (np.arange(256, dtype=np.float32) / 255.0)[None, :, None].repeat(3, axis=2)
  config = ml_collections.ConfigDict(dict(darken_gamma=2.2, darken_quantize_8bit=True))
  saved = montulet.darken_input(ramp, 128, config)
  codes = saved * 255.0
  np.testing.assert_array_equal(codes, np.round(codes))
  assert sorted(np.unique(np.round(codes)).astype(int)) == list(range(29))
  config.darken_quantize_8bit = False
  floats = montulet.darken_input(ramp, 128, config)
  assert len(np.unique(floats)) == 256
  np.testing.assert_allclose(saved, floats, atol=0.5 / 255 + 1e-7)  # rounded to the nearest code


def test_canny_rejects_a_flat_patch_and_keeps_a_textured_one():
  flat = np.full((64, 64, 3), 0.4)
  textured = skimage.data.astronaut()[100:164, 150:214] / 255.0
  assert montulet.edge_fraction(flat, sigma=1.0) == 0.0
  assert montulet.edge_fraction(textured, sigma=1.0) > 0.02


def test_patch_recipe_shapes_ranges_and_determinism():
  config = ml_collections.ConfigDict(dict(
      crop_size=32, canny_sigma=1.0, canny_min_edge_fraction=0.02, canny_max_tries=10,
      darken_min=1, darken_max=128, darken_gamma=2.2, darken_quantize_8bit=False))
  photo = skimage.data.chelsea() / 255.0
  example = {"input": photo, "target": photo, "name": b"chelsea"}
  recipe = montulet.MontuletPatch(config, lambda ex, c: {"input": ex["input"], "target": ex["target"]})
  a = recipe.random_map(example, np.random.default_rng(3))
  b = recipe.random_map(example, np.random.default_rng(3))
  assert a["input"].shape == a["target"].shape == (32, 32, 3)  # RGB: the method takes the lightness itself
  np.testing.assert_array_equal(a["input"], b["input"])
  assert 0.0 <= a["input"].min() and a["target"].max() <= 1.0
  assert a["input"].mean() < a["target"].mean()  # darkened (divisor >= 1)
  # The darkened patch is the target patch darkened by one integer divisor in [1, 128].
  ratio = (a["input"][a["target"] > 0.2] ** 2.2) / (a["target"][a["target"] > 0.2] ** 2.2)
  divisor = 1.0 / np.median(ratio)
  assert abs(divisor - round(divisor)) < 1e-3 and 1 <= round(divisor) <= 128
  np.testing.assert_allclose(ratio, 1.0 / round(divisor), rtol=1e-4)
  config.darken_quantize_8bit = True  # the same draw, saved as 8 bits
  saved = recipe.random_map(example, np.random.default_rng(3))
  np.testing.assert_array_equal(saved["target"], a["target"])
  np.testing.assert_array_equal(saved["input"] * 255, np.round(saved["input"] * 255))
  np.testing.assert_allclose(saved["input"], a["input"], atol=0.5 / 255 + 1e-6)


def _patch_epochs(fixed, seed=0, epochs=2):
  """Every patch of `epochs` passes over a 2-photo source (3 patches each), in stream order."""
  config = ml_collections.ConfigDict(dict(
      crop_size=32, patches_per_image=3, canny_sigma=1.0, canny_min_edge_fraction=0.02, canny_max_tries=10,
      darken_min=1, darken_max=128, darken_gamma=2.2, darken_quantize_8bit=True, fixed_patches=fixed))
  source = [{"input": skimage.data.chelsea(), "target": skimage.data.chelsea(), "name": b"chelsea"},
            {"input": skimage.data.astronaut(), "target": skimage.data.astronaut(), "name": b"astronaut"}]
  pair = lambda ex, c: {"input": ex["input"] / 255.0, "target": ex["target"] / 255.0}
  stream = montulet.patch_stream(source, config, pair, seed)
  n = len(source) * config.patches_per_image
  return [[stream[e * n + i] for i in range(n)] for e in range(epochs)]


def _as_set(patches):
  return sorted(p["input"].tobytes() + p["target"].tobytes() for p in patches)


def test_fixed_patches_are_one_set_every_epoch_and_fresh_ones_are_not():
  """`fixed_patches` (the paper's saved set, sec. 3-4): epoch after epoch the same patches and divisors, in
  a new order, and the same on every run with the seed; otherwise each epoch draws new ones."""
  first, second = _patch_epochs(True)
  assert _as_set(first) == _as_set(second)
  assert len(set(_as_set(first))) == len(first)  # distinct patches (positions and divisors)
  assert [p["input"].tobytes() for p in first] != [p["input"].tobytes() for p in second]  # reshuffled
  again, _ = _patch_epochs(True)
  assert _as_set(again) == _as_set(first)
  assert _as_set(_patch_epochs(True, seed=1)[0]) != _as_set(first)  # the seed draws the set
  fresh_first, fresh_second = _patch_epochs(False)
  assert not set(_as_set(fresh_first)) & set(_as_set(fresh_second))


def test_montulet_recipe_in_the_pipeline_gives_rgb_batches():
  from tests.conftest import load_config
  from lle.data import pipeline
  config = load_config("configs/itmn.py:tiny")  # the demo's LDR/HDR pairs stand in for FiveK pairs
  with config.unlocked():
    config.data.target_feature = "ldr"
    config.data.target_encoding = "none"
    config.data.update(dict(recipe="montulet", patches_per_image=5, canny_sigma=1.0,
                            canny_min_edge_fraction=0.02, canny_max_tries=10, darken_min=1, darken_max=128,
                            darken_gamma=2.2, darken_quantize_8bit=True, fixed_patches=True))
  ds = pipeline.train_dataset(config)
  a, b = ds[3], pipeline.train_dataset(config)[3]
  assert a["input"].shape == (config.batch_size, 32, 32, 3) and a["target"].shape == a["input"].shape
  np.testing.assert_array_equal(a["input"], b["input"])
  assert float(a["input"].mean()) < float(a["target"].mean())

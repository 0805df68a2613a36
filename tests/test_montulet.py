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


def test_canny_rejects_a_flat_patch_and_keeps_a_textured_one():
  flat = np.full((64, 64, 3), 0.4)
  textured = skimage.data.astronaut()[100:164, 150:214] / 255.0
  assert montulet.edge_fraction(flat, sigma=1.0) == 0.0
  assert montulet.edge_fraction(textured, sigma=1.0) > 0.02


def test_patch_recipe_shapes_ranges_and_determinism():
  config = ml_collections.ConfigDict(dict(
      crop_size=32, canny_sigma=1.0, canny_min_edge_fraction=0.02, canny_max_tries=10,
      darken_min=1, darken_max=128, darken_gamma=2.2))
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


def test_montulet_recipe_in_the_pipeline_gives_rgb_batches():
  from tests.conftest import load_config
  from lle.data import pipeline
  config = load_config("configs/itmn.py:tiny")  # the demo's LDR/HDR pairs stand in for FiveK pairs
  with config.unlocked():
    config.data.target_feature = "ldr"
    config.data.target_encoding = "none"
    config.data.update(dict(recipe="montulet", patches_per_image=5, canny_sigma=1.0,
                            canny_min_edge_fraction=0.02, canny_max_tries=10, darken_min=1, darken_max=128,
                            darken_gamma=2.2))
  ds = pipeline.train_dataset(config)
  a, b = ds[3], pipeline.train_dataset(config)[3]
  assert a["input"].shape == (config.batch_size, 32, 32, 3) and a["target"].shape == a["input"].shape
  np.testing.assert_array_equal(a["input"], b["input"])
  assert float(a["input"].mean()) < float(a["target"].mean())

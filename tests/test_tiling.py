"""Tiled inference: every method's windows give the one-pass output, the halos bound the measured
receptive fields, and windows keep one shape."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import methods, tiling
from tests.conftest import load_config


def _random_state(config, seed=0):
  """A state whose networks have He-scaled random weights: initial weights (e.g. N(0, 0.02)) give
  near-constant outputs that would hide a tiling error."""
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(seed))
  keys = iter(jax.random.split(jax.random.key(seed + 1), 1000))

  def scale(p):
    if p.ndim >= 2:
      return jax.random.normal(next(keys), p.shape) * np.sqrt(2.0 / np.prod(p.shape[:-1]))
    return jax.random.normal(next(keys), p.shape) * 0.1

  return method, {k: v.replace(params=jax.tree.map(scale, v.params)) for k, v in state.items()}


def _photo(h, w, seed=0):
  """A smooth random 8-bit image (noise upsampled): structure at several scales."""
  rng = np.random.default_rng(seed)
  coarse = rng.random((h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
  smooth = np.asarray(jax.image.resize(coarse, (h, w, 3), "linear"))
  return np.clip((smooth + 0.1 * rng.random((h, w, 3))) * 230, 0, 255).astype(np.uint8)


def _one_pass(method, state, image):
  x = tiling.to_float(tiling.pad_to_multiple(image, method.size_multiple))[None]
  s = method.tiling.output_scale
  return np.asarray(method.predict(state, jnp.asarray(x)))[0, :image.shape[0] * s, :image.shape[1] * s]


# NEID's other ablations differ only in branches the full model has (their halos: the next test).
SPECS = ["configs/gladnet.py:tiny", "configs/neid.py:tiny", "configs/neid.py:tiny,unet", "configs/itmn.py:tiny"]


@pytest.mark.parametrize("spec", SPECS)
def test_tiled_equals_one_pass_for_every_method(spec):
  method, state = _random_state(load_config(spec))
  image = _photo(101, 157)  # odd sizes: padding to the size multiple is cropped back
  tile = 2 * method.size_multiple * 4
  tiled = tiling.TiledImage(tiling.pad_to_multiple(image, method.size_multiple), tile, method.tiling.halo, 3)
  assert len(tiled.boxes) >= 4 and tiled.window[0] < tiled.size[0]  # really tiled, several windows
  full = _one_pass(method, state, image)
  out = tiling.TiledPredictor(method, state, tile=tile, batch=3)(image)
  assert out.shape == full.shape
  assert float(np.std(full)) > 0.01  # a non-trivial output
  np.testing.assert_allclose(out, full, atol=1e-5)  # float rounding only; the bound asked is 1/255
  # Without context the windows' edges show: the test would see a wrong halo or a missing global part.
  no_halo = dataclasses.replace(method, tiling=dataclasses.replace(method.tiling, halo=0))
  assert np.abs(tiling.TiledPredictor(no_halo, state, tile=tile, batch=3)(image) - full).max() > 1 / 255


@pytest.mark.parametrize("spec", ["configs/gladnet.py:tiny", "configs/neid.py:tiny"])
def test_the_global_part_is_computed_once_per_image(spec):
  # GLADNet's illumination and NEID's pooled features come from the whole image: windows that computed
  # them from their own pixels would differ from the one-pass output.
  method, state = _random_state(load_config(spec))
  image = _photo(96, 200, seed=1)
  local = dataclasses.replace(method, tiling=dataclasses.replace(method.tiling, context=None,
                                                                 predict_window=None))
  full = _one_pass(method, state, image)
  assert np.abs(tiling.TiledPredictor(local, state, tile=16, batch=2)(image) - full).max() > 1 / 255
  np.testing.assert_allclose(tiling.TiledPredictor(method, state, tile=16, batch=2)(image), full, atol=1e-5)


def test_gladnet_windows_read_the_illumination_rows_of_the_one_pass_resize():
  # At 94 x 122 the tiny config's resize 16 -> 94 (and -> 122) reads, by TensorFlow's float32 index, a
  # global row one lower than floor(r * 16 / 94) at row 47 (column 61): windows must read the same rows.
  method, state = _random_state(load_config("configs/gladnet.py:tiny"))
  image = _photo(94, 122, seed=2)
  full = _one_pass(method, state, image)
  np.testing.assert_allclose(tiling.TiledPredictor(method, state, tile=16, batch=4)(image), full, atol=1e-5)


@pytest.mark.parametrize("spec,field,depth", [("configs/itmn.py:tiny", "generator", 5),
                                              ("configs/neid.py:tiny,le_dr", "model", 5),
                                              ("configs/gladnet.py:tiny", None, None)])
def test_halo_bounds_the_measured_receptive_field(spec, field, depth):
  """The support of one output pixel's gradient, at the papers' depths (narrow widths)."""
  config = load_config(spec)
  if field:
    with config.unlocked():
      config[field].features = (4,) * depth
  method, state = _random_state(config)
  size, centre = 256, 131
  x = jax.random.uniform(jax.random.key(2), (1, size, size, 3))
  s = method.tiling.output_scale
  if method.tiling.context is None:
    pixel = lambda x: method.predict(state, x)[0, centre * s, centre * s].sum()
  else:  # GLADNet: the local part, with the illumination held fixed
    ctx = method.tiling.context(state, tiling.TiledImage(np.asarray(x[0]), size, 0))
    offsets, cores, image_size = jnp.zeros((1, 2), jnp.int32), jnp.zeros((1, 4), jnp.int32), jnp.asarray([size] * 2)
    pixel = lambda x: method.tiling.predict_window(state, x, ctx, offsets, cores, image_size)[0, centre, centre].sum()
  # Compiled as one program: op by op, each of the deep networks' operations (and its gradient) compiled
  # on its own, 20-40 s. The gradient's support is the same: the zeros outside the field are exact.
  grad = np.abs(np.asarray(jax.jit(jax.grad(pixel))(x))[0]).sum(-1)
  rows, cols = np.nonzero(grad)
  reach = max(centre - rows.min(), rows.max() - centre, centre - cols.min(), cols.max() - centre)
  halo = method.tiling.halo
  assert 0 < reach <= halo < reach + 2 * method.size_multiple + 8
  expected = {"configs/itmn.py:tiny": 96, "configs/neid.py:tiny,le_dr": 112, "configs/gladnet.py:tiny": 2}
  assert halo == expected[spec]


def test_windows_have_one_shape_and_cores_tile_the_image():
  image = np.zeros((300, 410, 3), np.uint8)
  tiled = tiling.TiledImage(image, tile=128, halo=24, batch=4)
  seen = np.zeros((300, 410), int)
  shapes = set()
  for windows, offsets, cores in tiled.batches():
    shapes.add(windows.shape)
    for (ry, rx), (t, l, b, r) in zip(offsets, cores):
      seen[ry + t:ry + b, rx + l:rx + r] += 1
      # context on every side that is not the image's edge
      assert ry + t == 0 or t >= 24
      assert rx + l == 0 or l >= 24
      assert ry + b == 300 or b == 0 or 176 - b >= 24
  assert shapes == {(4, 176, 176, 3)}
  np.testing.assert_array_equal(seen, 1)

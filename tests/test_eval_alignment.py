"""Evaluation at full size: the input is padded at the bottom/right to the model's size multiple, and the
output is cropped to the target from the top-left, for same-size models (iTMN, GLADNet) and for models
whose output is larger than their input (NEID's 2x)."""
import jax.numpy as jnp
import numpy as np
import pytest

from lle import evaluate
from lle.methods import Method
from tests.conftest import load_config


def _config():
  config = load_config("configs/neid.py:tiny")
  with config.unlocked():
    config.eval.metrics = ("psnr",)
    config.eval.num_images_to_save = 0
    config.eval.quantize_8bit = False  # the float examples are not 8-bit images
  return config


def _method(predict, multiple, baseline):
  return Method(init=None, train_step=None, predict=predict, networks=None, baselines={"identity": baseline},
                size_multiple=multiple)


def _check_multiple(x, multiple):
  assert x.shape[1] % multiple == 0 and x.shape[2] % multiple == 0, x.shape  # the model's contract
  return x


def _upsample2(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _examples(shapes, scale=1, offset=0.0):
  rng = np.random.default_rng(0)
  out = []
  for i, (h, w) in enumerate(shapes):
    x = (0.2 + 0.6 * rng.random((h, w, 3))).astype(np.float32)
    target = np.asarray(_upsample2(jnp.asarray(x)[None]))[0] if scale == 2 else x
    out.append({"input": x, "target": np.clip(target + offset, 0, 1).astype(np.float32), "name": f"im{i}"})
  return out


def test_same_size_model_sees_padded_input_and_is_scored_on_the_unpadded_region():
  method = _method(lambda state, x: _check_multiple(x, 8), 8, lambda x: x)
  means, per_image, _ = evaluate.evaluate(method, None, _examples([(13, 21), (16, 9)]), _config())
  assert all(s["psnr"] == np.inf for s in per_image["model"].values())  # exact: no shift, no padding kept
  assert means["identity"]["psnr"] == np.inf
  # A known error: output = input + 0.1 everywhere gives MSE 0.01, PSNR 20 dB on the scored region.
  shifted = _method(lambda state, x: _check_multiple(x, 8) + 0.1, 8, lambda x: x)
  means, _, _ = evaluate.evaluate(shifted, None, _examples([(13, 21)]), _config())
  assert means["model"]["psnr"] == pytest.approx(20.0, abs=1e-4)


def test_double_size_model_is_cropped_to_its_target():
  """NEID-like: the input is padded to the multiple, the output is twice the padded input, and the score
  is taken on the target's (2h, 2w) top-left region, which is exactly the 2x of the unpadded input."""
  method = _method(lambda state, x: _upsample2(_check_multiple(x, 4)), 4, _upsample2)
  means, per_image, _ = evaluate.evaluate(method, None, _examples([(7, 10), (5, 12)], scale=2), _config())
  assert all(s["psnr"] == np.inf for s in per_image["model"].values())
  assert means["identity"]["psnr"] == np.inf
  small = _method(lambda state, x: x, 4, lambda x: x)  # an output smaller than the target is an error
  with pytest.raises(ValueError, match="smaller than its target"):
    evaluate.evaluate(small, None, _examples([(7, 10)], scale=2), _config())


def test_pad_to_multiple_pads_bottom_right_by_reflection():
  """Rows and columns past the image mirror it without repeating the edge ([.., 3, 4] -> [.., 3, 4, 3, 2]);
  where the padding is as large as the image, edge values repeat instead."""
  x = np.arange(15.0).reshape(1, 3, 5, 1)
  y = np.asarray(evaluate.pad_to_multiple(jnp.asarray(x), 4))[0, ..., 0]
  np.testing.assert_array_equal(y, x[0, ..., 0][[0, 1, 2, 1]][:, [0, 1, 2, 3, 4, 3, 2, 1]])
  small = np.arange(6.0).reshape(1, 2, 3, 1)
  y = np.asarray(evaluate.pad_to_multiple(jnp.asarray(small), 4))[0, ..., 0]
  np.testing.assert_array_equal(y, small[0, ..., 0][[0, 1, 1, 1]][:, [0, 1, 2, 2]])
  same = jnp.asarray(x)
  assert evaluate.pad_to_multiple(same, 1) is same

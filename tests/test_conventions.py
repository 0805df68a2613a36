"""Scoring conventions: 8-bit quantisation as each paper saved its outputs, colour space and SSIM window
as config fields written into results.json, and iTMN's identity baseline read as sRGB."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from lle import evaluate, methods
from lle.methods import Method
from lle.metrics import fidelity
from tests.conftest import load_config


def _pq_by_hand(nits):
  """SMPTE ST 2084 inverse EOTF with the standard's constants written out."""
  m1, m2 = 2610 / 4096 / 4, 2523 / 4096 * 128
  c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
  y = (nits / 10000.0) ** m1
  return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def test_itmn_identity_baseline_decodes_its_input_as_srgb():
  config = load_config("configs/itmn.py:tiny")
  identity = methods.get(config).baselines["identity"]
  # sRGB 0.5 is linear ((0.5 + 0.055) / 1.055)^2.4 = 0.214041 of white; white is 100 cd/m^2: 21.4041 cd/m^2.
  linear = ((0.5 + 0.055) / 1.055) ** 2.4
  assert linear == pytest.approx(0.2140411, abs=1e-7)
  want = _pq_by_hand(100.0 * linear)
  assert want == pytest.approx(0.36291, abs=1e-4)
  got = np.asarray(identity(jnp.full((1, 4, 4, 3), 0.5)))
  np.testing.assert_allclose(got, want, atol=2e-6)
  # White is 100 cd/m^2 (PQ 0.5081), black stays 0 cd/m^2 (PQ 7.3e-7, the code of zero luminance).
  np.testing.assert_allclose(np.asarray(identity(jnp.asarray([1.0, 0.0]))), [_pq_by_hand(100.0), _pq_by_hand(0.0)],
                             atol=2e-6)


def _stub(outputs):
  """A method whose model returns `outputs` (whatever the input) and whose baseline is the input."""
  return Method(init=None, train_step=None, predict=lambda state, x: jnp.repeat(jnp.asarray(outputs), x.shape[0], axis=0),
                networks=None, baselines={"identity": lambda x: x})


def _examples(target):
  return [{"input": target, "target": target, "name": "a"}]


def test_quantize_8bit_floor_and_round():
  target = np.full((16, 16, 3), 100, np.float32) / np.float32(255)  # as the pipeline reads 8-bit targets
  output = np.full((1, 16, 16, 3), 100.7, np.float32) / np.float32(255)
  config = load_config("configs/gladnet.py:tiny")
  assert (config.eval.quantize_8bit, config.eval.quantize_rounding) == (True, "floor")
  with config.unlocked():
    config.eval.metrics = ("psnr",)
    config.eval.num_images_to_save = 0
  scores = {}
  for quantize, rounding in ((False, "round"), (True, "floor"), (True, "round")):
    with config.unlocked():
      config.eval.quantize_8bit, config.eval.quantize_rounding = quantize, rounding
    means, _, _ = evaluate.evaluate(_stub(output), None, _examples(target), config)
    scores[quantize, rounding] = means["model"]["psnr"]
    assert means["identity"]["psnr"] == np.inf  # an exact 8-bit value stays itself, floored or rounded
  psnr = lambda levels: 10 * np.log10(255.0**2 / levels**2)
  assert scores[False, "round"] == pytest.approx(psnr(0.7), abs=1e-3)
  assert scores[True, "floor"] == np.inf  # 100.7 is saved as 100
  assert scores[True, "round"] == pytest.approx(psnr(1.0), abs=1e-3)  # ... or as 101


def test_colour_space_and_ssim_window_follow_the_config(tmp_path):
  rng = np.random.default_rng(0)
  target = rng.random((400, 420, 3)).astype(np.float32)  # ssim.m subsamples by round(400 / 256) = 2
  output = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np.float32)[None]
  config = load_config("configs/neid.py:tiny")
  with config.unlocked():
    config.eval.quantize_8bit = False
    config.eval.color, config.eval.ssim_window = "y", "matlab"
    config.eval.num_images_to_save = 0
  means, per_image, _ = evaluate.evaluate(_stub(output), None, _examples(target), config)
  assert means["model"]["psnr"] == pytest.approx(float(fidelity.psnr(output, target[None], y_channel=True)[0]), rel=1e-6)
  want_ssim = float(fidelity.ssim(output, target[None], y_channel=True, downsample=True)[0])
  assert means["model"]["ssim"] == pytest.approx(want_ssim, rel=1e-6)
  assert abs(want_ssim - float(fidelity.ssim(output, target[None], y_channel=True)[0])) > 2e-4  # the window matters
  from lle import evaluate as ev
  results = ev.write_results(tmp_path, config=config, step=1, means=means, per_image=per_image,
                             dataset={}, num_devices=1)
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["conventions"] == results["conventions"] == {
      "quantize_8bit": False, "quantize_rounding": "round", "color": "y", "ssim_window": "matlab",
      "hdrvdp_release": "2.2.2", "psnr_pooling": "image", "clip": True,
      "fsitm_reference": "linear"}
  assert saved["weights"] == "trained"


def test_hdrvdp_columns_follow_the_configured_release():
  rng = np.random.default_rng(0)
  target = rng.uniform(0.3, 0.6, (24, 24, 3)).astype(np.float32)  # PQ codes: about 50..900 cd/m^2
  output = (target * rng.uniform(0.97, 1.03, target.shape)).astype(np.float32)[None]
  config = load_config("configs/itmn.py:tiny")
  assert config.eval.hdrvdp_release == "2.2.2"
  with config.unlocked():
    config.eval.metrics = ("hdrvdp2",)
  new = evaluate.metric_fns(config)["hdrvdp2"](output, target[None])
  with config.unlocked():
    config.eval.hdrvdp_release = "2.2.0"
  old = evaluate.metric_fns(config)["hdrvdp2"](output, target[None])
  assert sorted(new) == ["hdrvdp2_cmax", "hdrvdp2_pdet", "hdrvdp2_q"]  # (jit returns a dict's keys sorted)
  assert sorted(old) == ["hdrvdp2_cmax", "hdrvdp2_pdet", "hdrvdp2_q", "hdrvdp2_qmos"]
  np.testing.assert_allclose(new["hdrvdp2_pdet"], old["hdrvdp2_pdet"], rtol=1e-6)  # the same in both releases
  assert 0 < float(new["hdrvdp2_q"][0]) < 100 and float(old["hdrvdp2_q"][0]) < 0  # 0-100 vs a log score
  np.testing.assert_allclose(old["hdrvdp2_qmos"], 100 / (1 + np.exp(3.455 * (old["hdrvdp2_q"] + 0.8886))), rtol=1e-5)
  with config.unlocked():
    config.eval.hdrvdp_release = "2.2.1"
  with pytest.raises(ValueError, match=r"config.eval.hdrvdp_release='2.2.1'; expected one of \('2.2.2', '2.2.0'\)"):
    evaluate.metric_fns(config)


def test_fsitm_reference_as_is_or_decoded_to_linear_light():
  """eval.fsitm_reference: "as_is" hands FSITM the 8-bit target as its file holds it (tmgan's default, the
  paper's likely reading), "linear" its sRGB decoding; each is recorded in results.json's conventions."""
  from skimage import data
  from lle import color
  from lle.metrics import feature_similarity
  target = (data.astronaut()[::8, ::8] / 255.0).astype(np.float32)  # 64 x 64
  output = np.clip(target[None] ** 0.7 * 1.1, 0, 1).astype(np.float32)
  config = load_config("configs/tmgan.py:tiny")
  assert config.eval.fsitm_reference == "as_is"
  scores = {}
  for reference in ("as_is", "linear"):
    with config.unlocked():
      config.eval.metrics, config.eval.fsitm_reference = ("fsitm",), reference
      config.eval.quantize_8bit, config.eval.num_images_to_save = False, 0
    means, _, _ = evaluate.evaluate(_stub(output), None, _examples(target), config)
    scores[reference] = means["model"]["fsitm"]
    assert evaluate.conventions(config)["fsitm_reference"] == reference
  as_is = float(feature_similarity.fsitm(output, target[None]).mean[0])
  linear = float(feature_similarity.fsitm(output, color.srgb_to_linear(target[None])).mean[0])
  assert scores == pytest.approx({"as_is": as_is, "linear": linear}, rel=1e-6)
  assert abs(as_is - linear) > 0.01  # the convention changes the score
  with config.unlocked():
    config.eval.fsitm_reference = "log"
  with pytest.raises(ValueError, match=r"fsitm_reference='log'; expected one of \('linear', 'as_is'\)"):
    evaluate.conventions(config)


def test_weights_origin_tells_a_release_folder_from_a_trained_run(tmp_path):
  (tmp_path / "release.json").write_text("{}")
  assert evaluate.weights_origin(tmp_path, 0) == "release"
  assert evaluate.weights_origin(tmp_path, 10) == "trained"  # fine-tuned from the release
  assert evaluate.weights_origin(tmp_path / "elsewhere", 0) == "trained"
  config = load_config("configs/gladnet.py:tiny")
  out = tmp_path / "scored_elsewhere"
  results = evaluate.write_results(tmp_path, config=config, step=0, means={"model": {}}, per_image={},
                                   dataset={}, num_devices=1, results_dir=out)
  assert json.loads((out / "results.json").read_text())["weights"] == results["weights"] == "release"
  assert not (tmp_path / "results.json").exists()


def test_each_method_scores_as_its_paper_and_bad_values_are_refused():
  expected = {"configs/gladnet.py": (True, "floor"), "configs/gladnet.py:paper": (True, "floor"),
              "configs/neid.py": (True, "round"), "configs/itmn.py": (False, "round")}
  for spec, (quantize, rounding) in expected.items():
    conv = evaluate.conventions(load_config(spec))
    assert (conv["quantize_8bit"], conv["quantize_rounding"], conv["color"], conv["ssim_window"]) == (
        quantize, rounding, "rgb", "gaussian")
  config = load_config("configs/itmn.py:tiny")
  with config.unlocked():
    config.eval.quantize_8bit = True
  with pytest.raises(ValueError, match="quantize_8bit applies to 8-bit .* 'pq'-coded HDR"):
    evaluate.conventions(config)
  with config.unlocked():
    config.eval.quantize_8bit, config.eval.color = False, "ycbcr"
  with pytest.raises(ValueError, match=r"config.eval.color='ycbcr'; expected one of \('rgb', 'y'\)"):
    evaluate.metric_fns(config)

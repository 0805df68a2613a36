"""The training-free baselines (lle.baselines), each against a reference: BIMEF against the authors' BIMEF.m
run under GNU Octave, MSR and the linear expansion against pixels computed by hand from their papers'
equations, exposure-gamma and CLAHE against direct computations; and how the evaluator scores them."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

from lle import baselines, color, evaluate, methods
from tests.conftest import load_config

BIMEF_PARAMS = dict(mu=0.5, a=-0.3293, b=1.1258, lam=0.5, sigma=5, sharpness=1e-3)


def _bimef_input(seed, scale, bright):
  """The inputs given to BIMEF.m: 50 x 50 uint8 RGB, cubed uniform noise scaled by `scale`; `bright`
  lifts the right half into [0.5, 1]. (50 x 50: BIMEF.m's 50 x 50 entropy copy is then the image itself,
  where Octave's imresize, which does not normalise its kernel weights, would differ from MATLAB's.)"""
  rng = np.random.default_rng(seed)
  x = rng.uniform(0.0, 1.0, (50, 50, 3)) ** 3 * scale
  if bright:
    x[:, 25:] = 0.5 + 0.5 * x[:, 25:]
  return np.round(x * 255).astype(np.uint8)


# BIMEF.m (github baidut/BIMEF at 509f041, lowlight/BIMEF.m, unmodified) under GNU Octave 7.3.0 with the
# image package 2.14.0: J = BIMEF(I) for I = _bimef_input(...) as uint8. Rows: pixels (row, column) of J,
# then the mean of each channel. Octave takes BIMEF.m's direct-solve branch (`A \ b`, no built-in ichol).
BIMEF_PIXELS = ((0, 0), (13, 7), (25, 25), (31, 40), (49, 49))
BIMEF_OCTAVE = {
    (0, 0.4, False): ([[0.319983, 0.069855, -0.005533], [0.390161, 0.120041, 0.045992], [0.14623, 0.348768, 0.389903],
                       [0.169806, 0.229941, -0.005534], [0.472059, 0.046002, -0.005533]], [0.26446, 0.255013, 0.255318]),
    (1, 0.6, False): ([[0.235666, 0.802855, -0.004467], [0.480162, 0.303624, 0.054678], [0.730448, -0.004504, 0.74827],
                       [-0.004505, 0.129223, 0.03553], [0.604171, 0.035332, -0.004477]], [0.29487, 0.293959, 0.306256]),
    (2, 0.5, True): ([[0.020492, 0.029258, 0.387709], [0.045591, 0.029611, -0.004096], [0.782651, 0.721178, 0.625524],
                      [0.800619, 0.784512, 0.658475], [0.604319, 0.856642, 0.604319]], [0.427475, 0.425055, 0.428949]),
}


@pytest.mark.parametrize("case", list(BIMEF_OCTAVE))
def test_bimef_matches_the_authors_bimef_m_under_octave(case):
  pixels, means = BIMEF_OCTAVE[case]
  image = _bimef_input(*case).astype(np.float64) / 255.0
  out = baselines.bimef(image, **BIMEF_PARAMS)
  # 1e-4: the exposure ratio k is found by Brent's method on a piecewise-constant entropy (Octave's
  # fminbnd and SciPy's fminbound may stop at k a few 1e-4 apart: seen 4e-5 at most on these pixels).
  np.testing.assert_allclose([out[p] for p in BIMEF_PIXELS], pixels, atol=1e-4)
  np.testing.assert_allclose(out.mean(axis=(0, 1)), means, atol=1e-4)


def test_bimef_keeps_an_image_without_dark_pixels_and_brightens_a_dark_one():
  bright = np.full((40, 60, 3), 0.8)
  bright[10:30, 20:40] = 0.6
  assert baselines.bimef_exposure_ratio(bright, np.zeros((40, 60), bool)) is None
  np.testing.assert_allclose(baselines.bimef(bright, **BIMEF_PARAMS), bright, atol=1e-12)  # BIMEF.m: J = I
  dark = _bimef_input(0, 0.2, False).astype(np.float64) / 255.0
  assert baselines.bimef(dark, **BIMEF_PARAMS).mean() > 2 * dark.mean()


def test_smooth_illumination_solves_its_periodic_weighted_system():
  """(I + lam L) S = t, L the Laplacian of the periodic 4-neighbour grid with weights lam-scaled
  1 / (|box * d| |d| + sharpness): the residual, written out edge by edge, is zero."""
  t = np.random.default_rng(3).uniform(0.0, 0.6, (9, 13))
  s = baselines.smooth_illumination(t, lam=0.5, sigma=5, sharpness=1e-3)
  residual = s - t
  for axis in (0, 1):
    d = np.roll(t, -1, axis=axis) - t
    box = sum(np.roll(np.pad(d, [(2, 2) if a == axis else (0, 0) for a in range(2)]), -k, axis=axis)
              for k in range(5)).take(np.arange(d.shape[axis]), axis=axis)
    w = 0.5 / (np.abs(box) * np.abs(d) + 1e-3)
    flow = w * (np.roll(s, -1, axis=axis) - s)  # edge (i, i+1): w (s_{i+1} - s_i)
    residual -= flow - np.roll(flow, 1, axis=axis)
  np.testing.assert_allclose(residual, 0.0, atol=1e-9)
  assert s.std() < t.std()


def _surround_by_hand(values, p, q, c, reach=40):
  """Jobson et al. 1997 eq. 2's F * I at pixel (p, q): F(x, y) = K exp(-(x^2 + y^2) / c^2), sum F = 1,
  over the image extended by mirror symmetry (np.pad 'symmetric', far beyond the surround)."""
  ext = np.pad(values, reach, mode="symmetric")
  offsets = np.arange(-reach, reach + 1)
  g = np.exp(-offsets.astype(np.float64) ** 2 / c**2)
  window = ext[p + reach - reach:p + reach + reach + 1, q + reach - reach:q + reach + reach + 1]
  return float(g @ window @ g / g.sum() ** 2)


def test_retinex_log_matches_pixels_computed_from_jobsons_equations():
  """R(p, q) = (1/3) sum_n [log I(p, q) - log (F_n * I)(p, q)] on I = 255 x + 1, each channel alone."""
  rng = np.random.default_rng(7)
  image = rng.uniform(0.0, 0.4, (1, 12, 17, 3)).astype(np.float32)
  scales = (2.0, 3.5, 5.0)
  got = np.asarray(jax.jit(lambda x: baselines.retinex_log(x, scales=scales))(image))[0]
  values = 255.0 * image[0].astype(np.float64) + 1.0
  for p, q, ch in ((0, 0, 0), (5, 9, 1), (11, 16, 2), (3, 14, 0)):
    want = np.mean([np.log(values[p, q, ch]) - np.log(_surround_by_hand(values[..., ch], p, q, c)) for c in scales])
    assert got[p, q, ch] == pytest.approx(want, abs=2e-5)


def test_multiscale_retinex_stretches_each_channel_with_one_percent_saturated():
  rng = np.random.default_rng(8)
  image = (rng.uniform(0.0, 1.0, (1, 60, 80, 3)) ** 2 * 0.3).astype(np.float32)
  config = load_config("configs/gladnet.py")
  b = config.eval.baselines.msr
  assert tuple(b.scales) == (15.0, 80.0, 250.0) and b.saturated == 0.01
  out = np.asarray(jax.jit(lambda x: baselines.multiscale_retinex(x, scales=tuple(b.scales), saturated=0.01))(image))
  raw = np.asarray(baselines.retinex_log(jnp.asarray(image), scales=tuple(b.scales)))
  for ch in range(3):
    lo, hi = np.quantile(raw[0, ..., ch], [0.01, 0.99])
    np.testing.assert_allclose(out[0, ..., ch], np.clip((raw[0, ..., ch] - lo) / (hi - lo), 0, 1), atol=1e-5)
    assert (out[0, ..., ch] == 0).mean() == pytest.approx(0.01, abs=2e-3)
    assert (out[0, ..., ch] == 1).mean() == pytest.approx(0.01, abs=2e-3)


def test_exposure_gamma_is_one_gain_to_middle_grey_under_a_power_law():
  rng = np.random.default_rng(4)
  image = rng.uniform(0.05, 0.25, (2, 16, 24, 3)).astype(np.float32)
  image[1] *= 0.5
  out = np.asarray(baselines.exposure_gamma(jnp.asarray(image), key=0.18, gamma=2.2))
  for i in range(2):
    linear = image[i].astype(np.float64) ** 2.2
    lum = linear @ np.asarray([0.2126, 0.7152, 0.0722])
    gain = 0.18 / np.exp(np.mean(np.log(1e-6 + lum)))
    want = np.clip(linear * gain, 0, 1) ** (1 / 2.2)
    np.testing.assert_allclose(out[i], want, rtol=2e-5, atol=1e-6)
    out_lum = (out[i].astype(np.float64) ** 2.2) @ np.asarray([0.2126, 0.7152, 0.0722])
    assert np.exp(np.mean(np.log(1e-6 + out_lum))) == pytest.approx(0.18, rel=1e-3)  # nothing clipped here


def test_clahe_is_scikit_images_with_the_configured_clip_limit():
  from skimage import exposure
  # Mostly one dark grey with a faint gradient: a peaked histogram, which the clip limit bounds (in counts
  # per 1/8 x 1/8 tile, at least 1: 0.01 and 0.05 differ from 16 x 20 pixels per tile on).
  image = np.broadcast_to(0.1 + 0.02 * np.linspace(0, 1, 160), (1, 128, 160))[..., None] * np.asarray([1.0, 0.9, 0.8])
  image = image + np.random.default_rng(5).uniform(0.0, 0.004, image.shape)
  config = load_config("configs/gladnet.py")
  clahe = methods.get(config).baselines["clahe"]
  assert clahe.host
  want = exposure.equalize_adapthist(image[0], clip_limit=0.01)
  np.testing.assert_allclose(clahe(image)[0], want, atol=1e-6)
  with config.unlocked():
    config.eval.baselines.clahe.clip_limit = 0.05
  stronger = methods.get(config).baselines["clahe"](image)[0]
  np.testing.assert_allclose(stronger, exposure.equalize_adapthist(image[0], clip_limit=0.05), atol=1e-6)
  assert np.abs(stronger - want).max() > 0.01


def _srgb_decode(x):
  x = np.asarray(x, np.float64)
  return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def test_linear_expansion_maps_the_luminance_range_onto_the_peak_linearly():
  """Akyuz et al. 2007: L_hdr = k ((L - L_min) / (L_max - L_min))^gamma on the linearised luminance, RGB
  scaled by L_hdr / L. k = 1000 cd/m^2 (iTMN sec. 4.1), gamma = 1."""
  ldr = np.asarray([[[0.2, 0.2, 0.2], [1.0, 1.0, 1.0]], [[0.6, 0.4, 0.2], [0.05, 0.1, 0.0]]], np.float32)[None]
  config = load_config("configs/itmn.py")
  expansion = methods.get(config).baselines["linear_expansion"]
  nits = np.asarray(color.pq_decode(expansion(jnp.asarray(ldr))))[0]
  linear = _srgb_decode(ldr[0])
  lum = linear @ np.asarray([0.2126, 0.7152, 0.0722])
  want_lum = 1000.0 * (lum - lum.min()) / (lum.max() - lum.min())
  want = linear * (want_lum / lum)[..., None]
  np.testing.assert_allclose(nits, want, rtol=2e-3, atol=1e-3)
  assert nits[0, 1] == pytest.approx([1000.0] * 3, rel=2e-3)  # white is the peak
  squared = np.asarray(color.pq_decode(baselines.linear_expansion(jnp.asarray(ldr), peak_nits=1000.0, gamma=2.0)))[0]
  np.testing.assert_allclose(squared[1, 0], linear[1, 0] * 1000.0 * ((lum[1, 0] - lum.min()) / (lum.max() - lum.min())) ** 2
                             / lum[1, 0], rtol=2e-3)


def test_each_method_declares_its_tasks_baselines():
  itm = set(methods.get(load_config("configs/itmn.py")).baselines)
  assert itm == {"identity", "inverse_reinhard", "linear_expansion"}
  for name in ("gladnet", "neid", "tmgan", "iqe"):
    assert set(methods.get(load_config(f"configs/{name}.py:demo")).baselines) == {
        "identity", "exposure_gamma", "clahe", "msr", "bimef"}, name


def _split(n=2, seed=0, size=(40, 48)):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    high = rng.uniform(0.2, 1.0, (*size, 3)).astype(np.float32)
    out.append({"input": high * 0.15, "target": high, "name": f"img{i}"})
  return out


def test_the_evaluation_scores_every_baseline_and_neid_sees_them_at_the_targets_size():
  from tests.test_tiling import _random_state
  for name in ("gladnet", "neid"):
    config = load_config(f"configs/{name}.py:tiny")
    with config.unlocked():
      config.eval.baselines.include = ()
      config.eval.batch_size = 4  # 3 images: one repeat fills the batch (host baselines skip it)
      config.eval.num_images_to_save = 1
    method, state = _random_state(config)
    examples = _split(3)
    if name == "neid":
      for e in examples:
        e["input"] = e["input"][::2, ::2]
    means, per_image, grids = evaluate.evaluate(method, state, examples, config)
    assert set(means) == {"model", "identity", "exposure_gamma", "clahe", "msr", "bimef"}
    assert all(len(per_image[s]) == 3 for s in means)
    for system in ("exposure_gamma", "clahe", "msr", "bimef"):  # each brightens the dark input
      assert means[system]["psnr"] > means["identity"]["psnr"], (name, system)
    # One grid: input | 5 baselines | model | target, under a strip of labels.
    assert grids["img0"].shape == (evaluate.LABEL_HEIGHT + 40, 8 * 48, 3)
  with config.unlocked():
    config.eval.baselines.include = ("identity", "nope")
  with pytest.raises(ValueError, match="names \\['nope'\\]; neid's baselines are"):
    evaluate.Evaluator(method, config)


def test_results_table_marks_each_columns_best_with_lower_better_for_mse():
  results = {"step": 500, "dataset": {"split": "test", "num_images": 3},
             "model": {"psnr": 21.0, "mse_8bit": 500.0, "ssim": 0.80},
             "baselines": {"identity": {"psnr": 15.0, "mse_8bit": 2000.0, "ssim": 0.85},
                           "msr": {"psnr": 18.0, "mse_8bit": 400.0, "ssim": 0.70}}}
  table = evaluate.results_table(results).splitlines()
  assert table[0] == "| test (3 images), step 500 | psnr | mse_8bit | ssim |"
  assert table[2] == "| model | **21.00** | 500.0 | 0.8000 |"
  assert table[3] == "| identity | 15.00 | 2000.0 | **0.8500** |"
  assert table[4] == "| msr | 18.00 | **400.0** | 0.7000 |"
  assert table[-1].endswith("the model is best on psnr; a baseline is best on mse_8bit (msr), ssim (identity)")


def test_results_table_reads_hdrvdp2_q_in_the_direction_of_its_release():
  """Release 2.2.2's Q is 0-100, higher is better; release 2.2.0's Q is a log of visible differences,
  lower is better (its Q_MOS is the 0-100 score)."""
  results = {"step": 1, "model": {"hdrvdp2_q": 70.0, "hdrvdp2_pdet": 0.9},
             "baselines": {"identity": {"hdrvdp2_q": 60.0, "hdrvdp2_pdet": 0.5}},
             "conventions": {"hdrvdp_release": "2.2.2"}}
  assert evaluate.results_table(results).splitlines()[2] == "| model | **70.00** | 0.9000 |"
  old = {**results, "model": {"hdrvdp2_q": -2.0, "hdrvdp2_pdet": 0.9},
         "baselines": {"identity": {"hdrvdp2_q": -3.0, "hdrvdp2_pdet": 0.5}},
         "conventions": {"hdrvdp_release": "2.2.0"}}
  assert evaluate.results_table(old).splitlines()[3] == "| identity | **-3.00** | **0.5000** |"


def test_results_table_names_the_headline_metrics_the_model_trails_and_why():
  config = {"eval": {"headline_metrics": ("psnr", "mpsnr", "hdrvdp2_q"), "headline_note": "the reason"}}
  results = {"step": 1, "config": config, "conventions": {"hdrvdp_release": "2.2.2"},
             "model": {"psnr": 19.0, "mpsnr": 14.0, "hdrvdp2_q": 60.0, "ssim": 0.5},
             "baselines": {"identity": {"psnr": 17.0, "mpsnr": 12.0, "hdrvdp2_q": 50.0, "ssim": 0.9},
                           "inverse_reinhard": {"psnr": 20.0, "mpsnr": 13.0, "hdrvdp2_q": 55.0, "ssim": 0.4}}}
  assert evaluate.results_table(results).splitlines()[-1] == (
      "headline metrics (psnr, mpsnr, hdrvdp2_q): the model trails on psnr: the reason")
  results["model"]["psnr"] = 21.0  # ssim is no headline metric: losing it does not count
  assert evaluate.results_table(results).splitlines()[-1] == (
      "headline metrics (psnr, mpsnr, hdrvdp2_q): the model leads every one")
  del results["config"]  # a config without headline metrics: no such line
  assert evaluate.results_table(results).splitlines()[-1].startswith("best of each column in bold")

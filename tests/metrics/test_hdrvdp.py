"""HDR-VDP-2 against the authors' MATLAB code, releases 2.2.0 and 2.2.2, run under GNU Octave 7.3.0 on the
pairs of `hdrvdp_cases.py` with `hdrvdp(test, ref, encoding, hdrvdp_pix_per_deg(24, [1920 1200], 0.5),
{'disable_lowvals_warning', true})`. Fixes needed under Octave: the matlabPyrTools MEX files (corrDn,
upConv, pointOp) built with `mkoctfile --mex` (their `#include "matrix.h"` pointed at `mex.h`), and
`fast_conv_fft` using `real(ifft2(X))` instead of `ifft2(X, 'symmetric')`, which Octave lacks (the same
values: the product is conjugate-symmetric). Octave's image package supplies imresize. Release 2.2.2 is
the `hdrvdp-2.2.2` folder as published (ChangeLog: "released 29 March 2020"); its P_det and C_max equal
2.2.0's to every printed digit on all eight pairs, and its code with 2.2.0's two quality lines and band
weights put back reproduces 2.2.0's Q and Q_MOS to every printed digit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pyrtools.pyramids import SteerablePyramidSpace
from pyrtools.pyramids.c.wrapper import upConv

from lle.metrics import hdrvdp, registry
from tests.metrics.hdrvdp_cases import CASES, make_pair

# case: (Q, P_det, C_max, Q_MOS) printed by the Octave run of release 2.2.0.
OCTAVE = {
    "ramp_noise": (-3.235813597, 0.9999790286, 15.54121861, 99.96994582),
    "lum_blur": (-1.65600905, 1.0, 354.6604151, 93.40971198),
    "rgb_tone": (-2.374840082, 0.9999995379, 21.04540086, 99.41471673),
    "rgb_noise": (-3.297868745, 1.0, 115.8746711, 99.97574411),
    "rgb_blur": (-2.057567595, 1.0, 464.1531991, 98.26861501),
    "lum_faint_noise": (-3.758555574, 0.04722106535, 0.06978657842, 99.99506092),
    "rgb_faint_tone": (-4.294456033, 0.0001715172086, 0.0002474682495, 99.99922455),
    "rgb_faint_blur": (-3.037059814, 0.01910484781, 0.02782915977, 99.94029597),
}
# case: Q printed by the Octave run of release 2.2.2 (its P_det and C_max are those above).
OCTAVE_222_Q = {
    "ramp_noise": 69.10343296, "lum_blur": 54.27125691, "rgb_tone": 64.33489135, "rgb_noise": 77.25729263,
    "rgb_blur": 59.89307653, "lum_faint_noise": 83.70690824, "rgb_faint_tone": 91.20951466,
    "rgb_faint_blur": 73.6059676,
}


def test_every_case_has_a_reference():
  assert sorted(OCTAVE) == sorted(OCTAVE_222_Q) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(OCTAVE))
def test_matches_both_releases_under_octave(name):
  test, reference, encoding = make_pair(name)
  both = lambda t, r: tuple(hdrvdp.hdrvdp(t, r, color_encoding=encoding, release=v) for v in ("2.2.2", "2.2.0"))
  new, old = jax.jit(both)(jnp.asarray(test, jnp.float32), jnp.asarray(reference, jnp.float32))
  q, p_det, c_max, q_mos = OCTAVE[name]
  # Required: Q within 0.1 and P_det within 0.01. Measured in float32: 2.2.0's Q within 1e-5, 2.2.2's Q
  # (100 minus a sum of about 30) within 6e-5, P_det within 1e-6.
  assert float(new["Q"]) == pytest.approx(OCTAVE_222_Q[name], abs=1e-3)
  assert "Q_MOS" not in new  # removed by release 2.2.1
  assert float(old["Q"]) == pytest.approx(q, abs=1e-3)
  assert float(old["Q_MOS"]) == pytest.approx(q_mos, abs=1e-3)
  for out in (new, old):
    assert float(out["P_det"]) == pytest.approx(p_det, abs=1e-4)
    assert float(out["C_max"]) == pytest.approx(c_max, rel=1e-3)
    assert out["P_map"].shape == out["C_map"].shape == test.shape[:2]


def test_quality_band_weights_of_each_release():
  # hdrvdp_parse_options.m: 2.2.0 clamps to 15..0.2344 cycles/deg, 2.2.2 to 60..0.1172 (zero weight at both
  # ends). The bands of the default display (33.5 px/deg): 16.76, 8.38, ... cycles/deg.
  freqs = hdrvdp.pix_per_deg() / 2 * 2.0 ** -np.arange(8)
  old = [hdrvdp.quality_band_weight(f, "2.2.0") for f in freqs]
  new = [hdrvdp.quality_band_weight(f, "2.2.2") for f in freqs]
  np.testing.assert_allclose([old[0], new[0]], 0.2832)  # 16.8 cycles/deg: 2.2.0 clamps it to 15
  np.testing.assert_allclose(old[-1], 0.0002)  # 0.131 cycles/deg, below the table: its last weight
  np.testing.assert_allclose(new[-1], 0.0)
  np.testing.assert_allclose(old[1:6], new[1:6])  # the same weights in between
  with pytest.raises(ValueError, match="release '2.1'"):
    hdrvdp.hdrvdp(jnp.ones((20, 20)), jnp.ones((20, 20)), color_encoding="luminance", release="2.1")


def test_pixels_per_degree_of_the_default_display():
  assert hdrvdp.pix_per_deg() == pytest.approx(33.510213911468, abs=1e-9)  # Octave's hdrvdp_pix_per_deg


def test_steerable_pyramid_matches_pyrtools_on_an_odd_size():
  x = np.random.default_rng(0).standard_normal((45, 70))
  with jax.enable_x64(True):
    mine = hdrvdp.build_pyramid(jnp.asarray(x))
    theirs = SteerablePyramidSpace(x, height="auto", order=3, edge_type="reflect1")
    assert len(mine) == theirs.num_scales + 2 == 3 + 1  # hi0, one level (45 -> 22 < 17 * 2), low-pass
    np.testing.assert_allclose(mine[0][0], theirs.pyr_coeffs["residual_highpass"], atol=1e-12)
    for o in range(4):
      np.testing.assert_allclose(mine[1][o], theirs.pyr_coeffs[(0, o)], atol=1e-12)
    np.testing.assert_allclose(mine[-1][0], theirs.pyr_coeffs["residual_lowpass"], atol=1e-12)
    np.testing.assert_allclose(hdrvdp.reconstruct_pyramid(mine), theirs.recon_pyr(), atol=1e-12)
    # The expand step mirrors at the edges like matlabPyrTools' upConv (not the adjoint of the reduce).
    _, _, lofilt, _ = hdrvdp._sp3_filters()
    y = np.random.default_rng(1).standard_normal((23, 35))
    np.testing.assert_allclose(hdrvdp._up_conv(jnp.asarray(y), lofilt, 2, (45, 70)),
                               upConv(y, lofilt, "reflect1", step=(2, 2), stop=(45, 70)), atol=1e-12)


def test_identical_images_are_invisible_and_gradients_are_finite():
  test, reference, _ = make_pair("rgb_blur")
  test, reference = test[:34, :40], jnp.asarray(reference[:34, :40], jnp.float32)  # small: a quick compile
  same = jax.jit(hdrvdp.hdrvdp)(reference, reference)
  assert float(same["P_det"]) == 0.0 and float(same["C_max"]) == 0.0
  assert float(same["Q"]) == 100.0  # release 2.2.2: 100 for the best quality
  grad = jax.jit(jax.grad(lambda t: hdrvdp.hdrvdp(t, reference)["Q"]))(jnp.asarray(test, jnp.float32))
  assert grad.shape == test.shape and bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0


def test_registry_batches_and_rejects_bad_input():
  pairs = [make_pair(n) for n in ("rgb_faint_blur", "rgb_faint_blur")]
  pred = jnp.asarray(np.stack([p[0] for p in pairs]), jnp.float32)
  target = jnp.asarray(np.stack([p[1] for p in pairs]), jnp.float32)
  out = registry.compute("hdrvdp2", pred, target)
  assert list(out) == list(registry.METRICS["hdrvdp2"].columns) == ["hdrvdp2_q", "hdrvdp2_pdet", "hdrvdp2_cmax"]
  np.testing.assert_allclose(out["hdrvdp2_q"], OCTAVE_222_Q["rgb_faint_blur"], atol=1e-3)
  np.testing.assert_allclose(out["hdrvdp2_pdet"], OCTAVE["rgb_faint_blur"][1], atol=1e-4)
  # Release 2.2.0 adds Q_MOS (its values through the evaluation: tests/test_conventions.py).
  assert registry.hdrvdp2_metric("2.2.0").columns == ("hdrvdp2_q", "hdrvdp2_qmos", "hdrvdp2_pdet", "hdrvdp2_cmax")
  with pytest.raises(ValueError, match="release '2.2.1'"):
    registry.hdrvdp2_metric("2.2.1")
  with pytest.raises(ValueError, match="17 x 17"):
    hdrvdp.hdrvdp(jnp.ones((16, 40, 3)), jnp.ones((16, 40, 3)))
  with pytest.raises(ValueError, match="'luminance' encoding takes one channel"):
    hdrvdp.hdrvdp(jnp.ones((20, 20, 3)), jnp.ones((20, 20, 3)), color_encoding="luminance")

"""PU21 perceptually uniform encoding and the PU-PSNR / PU-SSIM metrics for HDR images.

Source: R. K. Mantiuk and M. Azimi, "PU21: A novel perceptually uniform encoding for adapting
existing quality metrics for HDR", Picture Coding Symposium 2021; reference code gfxdisp/pu21
(``pu21_encoder.m``, ``pu21_metric.m``).

Inputs are NHWC float arrays of *absolute* linear values in cd/m^2 (nits). Relative HDR images
must be scaled first: pass ``luminance_scale`` (cd/m^2 per unit), e.g. so that diffuse white or the
display peak lands at the intended luminance. Values are clamped to ``[0.005, 10000]`` cd/m^2 before
encoding, as the reference does.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

from lle.metrics import _filters
from lle.metrics import _prep
from lle.metrics import fidelity

# pu21_encoder.m, parameters updated 06/02/2020 (p1..p7); 'banding_glare' is the recommended default.
PU21_PARAMS = {
    'banding': (1.070275272, 0.4088273932, 0.153224308, 0.2520326168, 1.063512885, 1.14115047,
                521.4527484),
    'banding_glare': (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627, 0.09150303166,
                      0.9099517204, 596.3148142),
    'peaks': (1.043882782, 0.6459495343, 0.3194584211, 0.374025247, 1.114783422, 1.095360363,
              384.9217577),
    'peaks_glare': (816.885024, 1479.463946, 0.001253215609, 0.9329636822, 0.06746643971,
                    1.573435413, 419.6006374),
}
L_MIN = 0.005  # cd/m^2, lowest luminance PU21 encodes
L_MAX = 10000.0  # cd/m^2, highest luminance PU21 encodes
# pu21_metric.m calls psnr(T, R, 256) and ssim(T, R, 'DynamicRange', 256): PU21 maps 100 cd/m^2
# (a typical SDR display peak) to about 256, so 256 plays the role of the 8-bit peak.
PU_PEAK = 256.0
# pu21_metric.m get_luminance: Rec. 709 / sRGB primaries.
_LUM = (0.212656, 0.715158, 0.072186)


def pu21_encode(luminance: chex.Array, *, variant: str = 'banding_glare') -> chex.Array:
  """PU21 encoding ``V = p7 (((p1 + p2 Y^p4) / (1 + p3 Y^p4))^p5 - p6)`` of absolute luminance ``Y``
  (cd/m^2), clamped to ``[0.005, 10000]`` first. ``V`` is about 0 at 0.005 cd/m^2 and 256 at
  100 cd/m^2. Any shape."""
  p1, p2, p3, p4, p5, p6, p7 = PU21_PARAMS[variant]
  y = jnp.clip(luminance, L_MIN, L_MAX)
  yp = y**p4
  return p7 * (((p1 + p2 * yp) / (1.0 + p3 * yp)) ** p5 - p6)


def _luminance(x: chex.Array) -> chex.Array:
  if x.shape[-1] == 1:
    return x
  chex.assert_axis_dimension(x, -1, 3)
  return jnp.tensordot(x, jnp.asarray(_LUM, x.dtype), axes=[[-1], [0]])[..., None]


@functools.partial(jax.jit, static_argnames=('luminance_scale', 'variant'))
def pu_psnr(
    pred: chex.Array,
    target: chex.Array,
    *,
    luminance_scale: float = 1.0,
    variant: str = 'banding_glare',
) -> chex.Array:
  """PU-PSNR as ``pu21_metric(T, R, 'PSNR')``: every RGB channel PU21-encoded, then
  ``10 log10(256^2 / MSE)`` with the MSE over all pixels and channels (peak 256, see ``PU_PEAK``)."""
  _prep.check_pair(pred, target)
  p = pu21_encode(pred * luminance_scale, variant=variant)
  t = pu21_encode(target * luminance_scale, variant=variant)
  return fidelity.psnr(p, t, data_range=PU_PEAK)


@functools.partial(jax.jit, static_argnames=('luminance_scale', 'variant'))
def pu_ssim(
    pred: chex.Array,
    target: chex.Array,
    *,
    luminance_scale: float = 1.0,
    variant: str = 'banding_glare',
) -> chex.Array:
  """PU-SSIM as ``pu21_metric(T, R, 'SSIM')``: luminance ``0.212656 R + 0.715158 G + 0.072186 B``,
  PU21-encoded, then MATLAB's built-in ``ssim(T, R, 'DynamicRange', 256)``.

  MATLAB's ``ssim`` is not Wang's ``ssim_index``: its 11x11 Gaussian (sigma 1.5) filters with
  edge-replicated borders and the SSIM map is averaged over *all* pixels (no 'valid' crop);
  ``C1 = (0.01 * 256)^2``, ``C2 = (0.03 * 256)^2``.
  """
  _prep.check_pair(pred, target)
  x = pu21_encode(_luminance(pred) * luminance_scale, variant=variant)
  y = pu21_encode(_luminance(target) * luminance_scale, variant=variant)
  taps = _filters.gaussian_kernel_1d(fidelity.SSIM_FILTER_SIZE, fidelity.SSIM_SIGMA)
  blur = functools.partial(_filters.separable_same_replicate, taps=taps)
  c1 = (fidelity.SSIM_K1 * PU_PEAK) ** 2
  c2 = (fidelity.SSIM_K2 * PU_PEAK) ** 2
  mx, my, xx, yy, xy = _filters.blur_many([x, y, x * x, y * y, x * y], blur)
  vx = xx - mx * mx
  vy = yy - my * my
  cxy = xy - mx * my
  ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))

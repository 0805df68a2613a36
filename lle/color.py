"""Colour transforms and tone-mapping operators: pure functions on [..., 3] arrays.

Every function works on numpy or jax arrays (it uses `jnp`), so the data builders and
the jitted evaluation share one definition.
"""
import jax.numpy as jnp

# BT.709 / sRGB luminance weights (ITU-R BT.709-6, item 3.3); Reinhard et al. 2002 use the same.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def srgb_to_linear(x):
  """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
  x = jnp.asarray(x)
  return jnp.where(x <= 0.04045, x / 12.92, ((jnp.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
  """IEC 61966-2-1 sRGB encoding of linear values in [0, 1] (clipped)."""
  x = jnp.clip(jnp.asarray(x), 0.0, 1.0)
  return jnp.where(x <= 0.0031308, 12.92 * x, 1.055 * jnp.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def luminance(rgb):
  """Relative luminance of linear RGB, [..., 3] -> [...]."""
  w = jnp.asarray(LUMINANCE_WEIGHTS, dtype=jnp.result_type(rgb, jnp.float32))
  return jnp.sum(jnp.asarray(rgb) * w, axis=-1)


def reinhard_global(hdr, *, key=0.18, white=None, eps=1e-6):
  """Reinhard et al. 2002 global photographic operator, eq. 1-4, on one linear HDR image [H, W, 3].

  L = key / L_avg * L_w, with L_avg the log-average luminance (eq. 1-2); L_d = L (1 + L / white^2) / (1 + L)
  (eq. 4), with `white` defaulting to the largest scaled luminance (the paper's choice) so that the
  brightest pixel maps to 1. Colour is carried by scaling RGB by L_d / L_w (Reinhard's sec. 3 practice).
  Returns linear display RGB in [0, 1].
  """
  hdr = jnp.asarray(hdr)
  lum = luminance(hdr)
  log_avg = jnp.exp(jnp.mean(jnp.log(eps + lum)))
  scaled = key / log_avg * lum
  if white is None:
    white = jnp.max(scaled)
  display = scaled * (1.0 + scaled / white**2) / (1.0 + scaled)
  ratio = display / jnp.maximum(lum, eps)
  return jnp.clip(hdr * ratio[..., None], 0.0, 1.0)


def inverse_reinhard(ldr_linear, *, max_display=0.99):
  """Inverse of Reinhard's simple operator L_d = L / (1 + L), applied to luminance: L = L_d / (1 - L_d).

  The scene key and log-average are unknown when inverting a single LDR image, so the result is in
  key-scaled units (L = key means "middle grey"); the caller maps it to absolute luminance.
  `max_display` caps L_d below 1, where the inverse diverges (a saturated pixel maps to 99).
  """
  ldr_linear = jnp.asarray(ldr_linear)
  lum_d = jnp.clip(luminance(ldr_linear), 0.0, max_display)
  lum = lum_d / (1.0 - lum_d)
  ratio = lum / jnp.maximum(lum_d, 1e-6)
  return ldr_linear * ratio[..., None]


# SMPTE ST 2084 (PQ) constants, exactly as in the standard (also ITU-R BT.2100 table 4).
_PQ_M1 = 2610 / 16384
_PQ_M2 = 2523 / 4096 * 128
_PQ_C1 = 3424 / 4096
_PQ_C2 = 2413 / 4096 * 32
_PQ_C3 = 2392 / 4096 * 32
PQ_PEAK_NITS = 10000.0


def pq_encode(nits, *, xp=jnp):
  """Absolute luminance in cd/m^2 -> PQ code value in [0, 1] (SMPTE ST 2084 inverse EOTF). `xp=numpy`
  computes on the host in the input's precision (the input pipeline: no device dispatch per example)."""
  y = xp.clip(xp.asarray(nits) / PQ_PEAK_NITS, 0.0, 1.0)
  ym = y**_PQ_M1
  return ((_PQ_C1 + _PQ_C2 * ym) / (1.0 + _PQ_C3 * ym)) ** _PQ_M2


def pq_decode(code):
  """PQ code value in [0, 1] -> absolute luminance in cd/m^2 (SMPTE ST 2084 EOTF)."""
  e = jnp.clip(jnp.asarray(code), 0.0, 1.0) ** (1.0 / _PQ_M2)
  return PQ_PEAK_NITS * (jnp.maximum(e - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * e)) ** (1.0 / _PQ_M1)


def rgb_to_hsv(rgb, *, eps=1e-8):
  """RGB in [0, 1] -> HSV, [..., 3] -> [..., 3], each channel in [0, 1] (hue in turns, as matplotlib and
  scikit-image give it). Hue is undefined where max == min (grey) and saturation where max == 0
  (black): both are 0 there, and so are their gradients (no NaN from the divisions)."""
  rgb = jnp.asarray(rgb)
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  v = jnp.max(rgb, axis=-1)
  delta = v - jnp.min(rgb, axis=-1)
  chromatic = delta > eps
  safe_delta = jnp.where(chromatic, delta, 1.0)
  h = jnp.where(v == r, (g - b) / safe_delta,
                jnp.where(v == g, 2.0 + (b - r) / safe_delta, 4.0 + (r - g) / safe_delta))
  h = jnp.where(chromatic, jnp.mod(h / 6.0, 1.0), 0.0)
  s = jnp.where(v > eps, delta / jnp.where(v > eps, v, 1.0), 0.0)
  return jnp.stack([h, s, v], axis=-1)


# CIE 1931 2-degree D65 white point, as scikit-image's `rgb2lab` uses by default (X, Y, Z with Y = 1), and
# the sRGB (BT.709 primaries, D65) linear RGB -> XYZ matrix of IEC 61966-2-1 as scikit-image writes it.
D65_WHITE = (0.95047, 1.0, 1.08883)
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_LAB_EPSILON = 0.008856  # (6/29)^3 as CIE 15 rounds it
_LAB_KAPPA = 7.787  # (29/6)^2 / 3


def _xyz_matrices(dtype):
  forward = jnp.asarray(_XYZ_FROM_RGB, dtype)
  return forward, jnp.linalg.inv(forward)


def srgb_to_lab(rgb):
  """sRGB in [0, 1] -> CIELAB (D65), [..., 3] -> [..., 3] with L in [0, 100] (scikit-image's rgb2lab).

  f(t) = t^(1/3) above (6/29)^3, else 7.787 t + 16/116; the cube root is taken of max(t, eps) so that
  the unused branch gives no NaN gradient at t = 0."""
  rgb = jnp.asarray(rgb)
  dtype = jnp.result_type(rgb, jnp.float32)
  forward, _ = _xyz_matrices(dtype)
  xyz = srgb_to_linear(rgb.astype(dtype)) @ forward.T / jnp.asarray(D65_WHITE, dtype)
  f = jnp.where(xyz > _LAB_EPSILON, jnp.cbrt(jnp.maximum(xyz, _LAB_EPSILON)), _LAB_KAPPA * xyz + 16.0 / 116.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_srgb(lab):
  """CIELAB (D65) -> sRGB in [0, 1] (scikit-image's lab2rgb: negative Z clipped to 0, the result clipped
  to [0, 1]); [..., 3] -> [..., 3]."""
  lab = jnp.asarray(lab)
  dtype = jnp.result_type(lab, jnp.float32)
  lab = lab.astype(dtype)
  fy = (lab[..., 0] + 16.0) / 116.0
  fx = lab[..., 1] / 500.0 + fy
  fz = jnp.maximum(fy - lab[..., 2] / 200.0, 0.0)
  f = jnp.stack([fx, fy, fz], axis=-1)
  xyz = jnp.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / _LAB_KAPPA) * jnp.asarray(D65_WHITE, dtype)
  _, inverse = _xyz_matrices(dtype)
  return linear_to_srgb(xyz @ inverse.T)


def linear_to_y(linear):
  """CIE Y (white = 1) of linear sRGB, [..., 3] -> [...]: the middle row of the matrix `srgb_to_lab` uses."""
  linear = jnp.asarray(linear)
  return linear @ jnp.asarray(_XYZ_FROM_RGB[1], jnp.result_type(linear, jnp.float32))


def lightness_to_y(lightness):
  """CIELAB L in [0, 100] -> CIE Y (white = 1): the inverse of L = 116 f(Y) - 16 (`srgb_to_lab`'s f)."""
  fy = (jnp.asarray(lightness) + 16.0) / 116.0
  return jnp.where(fy > 6.0 / 29.0, fy**3, (fy - 16.0 / 116.0) / _LAB_KAPPA)

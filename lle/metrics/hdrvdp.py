"""HDR-VDP-2 (Mantiuk et al., SIGGRAPH 2011), releases 2.2.2 (the default) and 2.2.0 of the authors'
MATLAB code, in JAX.

The visible-difference and quality predictor the iTMN paper ranks methods by. Both images are in
absolute units (cd/m^2); the pipeline follows `hdrvdp.m` / `hdrvdp_visual_pathway.m`, the same in both
releases except for the quality pooling of step 7 (the two codes, run under GNU Octave, give the same
P_det and C_max to every printed digit):

1. optical transfer function of the eye (`hdrvdp_mtf`), applied in the frequency domain on a 2x padded
   canvas whose border is the surround luminance (`surround_l`, default 1e-5 cd/m^2);
2. spectral sensitivities: the display's RGB (or D65 luminance) emission spectra integrated against the
   L, M, S cones and rods (the 3x4 / 1x4 matrices below are those integrals, computed by HDR-VDP 2.2.0's
   own `load_spectral_resp` and `trapz` from its spectral tables);
3. photoreceptor nonlinearity: cone (L + M) and rod responses mapped through the JND scales integrated
   from the joint rod-cone and rod sensitivity curves (`create_pn_jnd`);
4. multi-scale decomposition: the spatial steerable pyramid with Simoncelli's `sp3` filters (4
   orientations, 'reflect1' edges, automatic height), the filter taps from `pyrtools`;
5. neural noise: the CSF (`hdrvdp_ncsf`) at each band's frequency and each pixel's adaptation
   luminance; the base band filtered by the CSF at the mean luminance;
6. contrast masking: self, cross-orientation and cross-band masking (`mask_*`);
7. probability of detection (psychometric function over the reconstructed difference map, spatial
   pooling) -> P_map, P_det (its peak), C_map, C_max; and the quality correlate Q (log of the band
   differences' root sum of squares, weighted per band), pooled as the release does (`RELEASES`):
   - 2.2.2 (29 March 2020, the last 2.x release; its ChangeLog: "the predictions of this version should
     be the same as 2.2.1"): Q = 100 - sum over bands and orientations of w_f (log(d + 1e-12) -
     log(1e-12)), 100 for identical images and lower for larger differences (negative for very large
     ones), with weights calibrated on LDR and HDR quality data over 10 band frequencies (2.2.1's
     ChangeLog: "Fixed issue when 'Q' varied with image size. Q is now scaled differently: 100 for the
     best quality and gets lower. Q_MOS has been removed as unreliable. Use 'Q' instead.");
   - 2.2.0 (19 October 2014): Q = the mean over bands and orientations of w_f log(d + 1e-12) (lower is
     better), and Q_MOS = 100 / (1 + exp(3.455 (Q + 0.8886))), its logistic mapping to a 0-100 mean
     opinion score, which later releases dropped.

Everything is a pure jnp function of static-shape arrays: jit- and vmap-able. It is differentiable except
at the non-smooth points of the original: the clamps (zero gradient outside their range), the `max` of
P_det / C_max (a gradient at the peak pixel only), `abs` / `sign` at exactly 0, and the test's pixels-
differ mask (a step). The base-band CSF is 0 at DC by a 0 / 0 limit: it is set there, so gradients stay
finite.

Reported as the registry metric `hdrvdp2`: columns hdrvdp2_q (the release's Q), hdrvdp2_pdet, hdrvdp2_cmax,
and hdrvdp2_qmos for release 2.2.0; the evaluation's release is `config.eval.hdrvdp_release`.

Colour encodings: 'luminance' ([H, W] or [H, W, 1] cd/m^2, D65 spectrum) and 'rgb-bt.709' (linear RGB in
cd/m^2 shown on the default 'ccfl-lcd' display; 'rgb-native' is the same thing under the name later
releases use: the display's native RGB). Other displays: `rgb_display='led-lcd' | 'crt'`.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# --- Parameters of HDR-VDP 2.2.0 and 2.2.2 (`hdrvdp_parse_options.m`, calibrated 30 Aug 2011). ------
_DALY_PEAK_CONTRAST_SENS = 0.006894596
SENSITIVITY_CORRECTION = _DALY_PEAK_CONTRAST_SENS / 10 ** -2.4
MASK_P = 0.544068
MASK_SELF = 0.189065
MASK_XO = 0.449199
MASK_XN = 1.52512
MASK_Q = 0.49576
PSYCH_FUNC_SLOPE = math.log10(3.5)
CSF_PARAMS = np.array([  # rows: adaptation luminances CSF_LUMS; columns: (unused), a, b, c, peak
    [0.0160737, 0.991265, 3.74038, 0.50722, 4.46044],
    [0.383873, 0.800889, 3.54104, 0.682505, 4.94958],
    [0.929301, 0.476505, 4.37453, 0.750315, 5.28678],
    [1.29776, 0.405782, 4.40602, 0.935314, 5.61425],
    [1.49222, 0.334278, 3.79542, 1.07327, 6.4635],
    [1.46213, 0.394533, 2.7755, 1.16577, 7.45665]])
CSF_LUMS = np.array([0.002, 0.02, 0.2, 2, 20, 150])
CSF_SA = (30.162, 4.0627, 1.6596, 0.2712)  # joint rod-cone sensitivity
CSF_SR_PAR = (1.1732, 1.1478, 1.2167, 0.5547, 2.9899, 1.1414)  # rod sensitivity
ROD_SENSITIVITY = 0.0
_MTF_PAR = (0.061466549455263, 0.99727370023777070)
MTF_A = (_MTF_PAR[1] * 0.426, _MTF_PAR[1] * 0.574, (1 - _MTF_PAR[1]) * _MTF_PAR[0],
         (1 - _MTF_PAR[1]) * (1 - _MTF_PAR[0]))
MTF_B = (0.028, 0.37, 37.0, 360.0)
SURROUND_L = 1e-5

# Quality pooling per release: per-band weights w_f at band frequencies (cycles/deg, decreasing; a band's
# weight is interpolated linearly at its frequency, clamped to the table's range) and how the per-band
# terms add up (see the module docstring).
RELEASES = {
    "2.2.2": {"band_freq": np.array([60, 30, 15, 7.5, 3.75, 1.875, 0.9375, 0.4688, 0.2344, 0.1172]),
              "band_w": np.array([0, 0.2832, 0.2832, 0.2142, 0.2690, 0.0398, 0.0003, 0.0003, 0, 0])},
    "2.2.0": {"band_freq": np.array([15, 7.5, 3.75, 1.875, 0.9375, 0.4688, 0.2344]),
              "band_w": np.array([0.2832, 0.2142, 0.2690, 0.0398, 0.0003, 0.0003, 0.0002])},
}
DEFAULT_RELEASE = "2.2.2"
QUALITY_EPSILON = 1e-12  # keeps log(d) finite where test and reference agree
QUALITY_LOGISTIC_Q1, QUALITY_LOGISTIC_Q2 = 3.455, 0.8886  # 2.2.0's Q -> Q_MOS


def quality_band_weight(band_freq: float, release: str = DEFAULT_RELEASE) -> float:
  """w_f of a band at `band_freq` cycles/deg: `interp1(quality_band_freq, quality_band_w, clamp(...))`."""
  table = RELEASES[release]
  freq, w = table["band_freq"], table["band_w"]
  return float(np.interp(np.clip(band_freq, freq[-1], freq[0]), freq[::-1], w[::-1]))

# Emission spectra x (L, M, S, rod) sensitivities, integrated over 360-780 nm: rows are the image
# channels. Computed by HDR-VDP 2.2.0 (`load_spectral_resp` of its emission_spectra_*.csv, d65.csv,
# log_cone_smith_pokorny_1975.csv and cie_scotopic_lum.txt, then `trapz`), run under GNU Octave 7.3.
EMISSION_TO_LMSR = {
    "ccfl-lcd": np.array([
        [0.19899612033792871, 0.041005860407588933, 6.1506308848643251e-05, 0.014377368621119191],
        [0.40476260703812544, 0.25492330644134564, 0.00069591745133302661, 0.48092084108413191],
        [0.054390619255321161, 0.050012248959300676, 0.0070375678953706862, 0.45427589566935994]]),
    "led-lcd": np.array([
        [0.1787174708325443, 0.04729528934232731, 0.00026744637869722664, 0.068868273216871098],
        [0.44171841764736336, 0.26495293150301868, 0.00097224149034442348, 0.58443920930196402],
        [0.037298983813337794, 0.034067516210767063, 0.0062149545925374514, 0.33097358677530136]]),
    "crt": np.array([
        [0.19352143856780377, 0.045053209085706196, 0.00016653637014154318, 0.047073666175541741],
        [0.41422401076383991, 0.25627519596218484, 0.00088377060782488155, 0.53845476753339838],
        [0.050716636286267429, 0.045238019719997337, 0.0069836400286939927, 0.40041394231638844]]),
    "d65": np.array([[0.60184715224469898, 0.31670829557916946, 0.0076648121695664373,
                      0.90467065459950324]]),
}
ENCODINGS = ("luminance", "rgb-bt.709", "rgb-native")


def pix_per_deg(display_diagonal_in: float = 24.0, resolution=(1920, 1200), viewing_distance: float = 0.5):
  """Pixels per visual degree of a display (`hdrvdp_pix_per_deg`): default a 24-inch 1920 x 1200 display
  seen from 0.5 m (33.51)."""
  ar = resolution[0] / resolution[1]
  height_mm = math.sqrt((display_diagonal_in * 25.4) ** 2 / (1 + ar ** 2))
  height_deg = 2 * math.degrees(math.atan(0.5 * height_mm / (viewing_distance * 1000)))
  return resolution[1] / height_deg


# --- Static tables (numpy, float64). ----------------------------------------------------------------


def cycles_per_degree(size, ppd: float) -> np.ndarray:
  """Spatial frequency (cycles/degree) of each coefficient of an FFT of `size` (`create_cycdeg_image`)."""
  nyquist = 0.5 * ppd

  def axis(n):
    half = n // 2
    step = nyquist / half
    if n % 2:
      return np.concatenate([np.linspace(0, nyquist, half + 1), np.linspace(-nyquist, -step, half)])
    return np.concatenate([np.linspace(0, nyquist - step, half), np.linspace(-nyquist, -step, half)])

  yy, xx = np.meshgrid(axis(size[0]), axis(size[1]), indexing="ij")
  return np.sqrt(xx ** 2 + yy ** 2)


def _interp(x, xp, fp):
  """MATLAB interp1 (linear) for increasing xp, inside the table (callers clamp)."""
  return jnp.interp(x, jnp.asarray(xp, x.dtype), jnp.asarray(fp, x.dtype))


def ncsf(rho, lum, xp=np):
  """Neural CSF (`hdrvdp_ncsf`): sensitivity at frequency `rho` (cycles/deg) and luminance `lum`."""
  lum_lut = np.log10(CSF_LUMS)
  log_lum = xp.clip(xp.log10(lum), lum_lut[0], lum_lut[-1])
  interp = np.interp if xp is np else jnp.interp
  a, b, c, peak = (interp(log_lum, lum_lut, CSF_PARAMS[:, k]) for k in range(1, 5))
  if np.ndim(rho) and not np.all(rho):  # zero at DC (where the formula divides by 0): set, not computed,
    zero = np.asarray(rho) == 0           # so that gradients stay finite
    rho = np.where(zero, 1.0, rho)
    s = peak / ((1 + (a * rho) ** b) / (1 - xp.exp(-(rho / 7) ** 2)) ** c) ** 0.5
    return xp.where(zero, 0.0, s)
  return peak / ((1 + (a * rho) ** b) / (1 - xp.exp(-(rho / 7) ** 2)) ** c) ** 0.5


@functools.lru_cache(maxsize=None)
def _jnd_tables():
  """(log10 luminance grid, cone JND scale, rod JND scale) (`create_pn_jnd`), sensitivity-corrected."""
  c_l = np.logspace(-5, 5, 2048)
  s_a = CSF_SA[0] * ((CSF_SA[1] / c_l) ** CSF_SA[2] + 1) ** -CSF_SA[3]
  peak_l, low_s, low_exp, high_s, high_exp, rod_sens = CSF_SR_PAR
  dist = np.abs(np.log10(c_l / peak_l))
  s_r = np.where(c_l > peak_l, np.exp(-dist ** high_exp / high_s), np.exp(-dist ** low_exp / low_s))
  s_r = s_r * 10 ** rod_sens * 10 ** ROD_SENSITIVITY
  s_c = 0.5 * np.interp(np.minimum(c_l * 2, c_l[-1]), c_l, np.maximum(s_a - s_r, 1e-3))
  log_l = np.log10(c_l)

  def jnd_scale(s):  # integral of the sensitivity in the log domain (Jacobian: L ln 10 / threshold)
    d_l = s * np.log(10)
    return np.concatenate([[0.0], np.cumsum(np.diff(log_l) * (d_l[1:] + d_l[:-1]) / 2)])

  return log_l, jnd_scale(s_c) * SENSITIVITY_CORRECTION, jnd_scale(s_r) * SENSITIVITY_CORRECTION


@functools.lru_cache(maxsize=None)
def _sp3_filters():
  """Simoncelli's 4-orientation spatial steerable pyramid filters ('sp3Filters'), float64."""
  from pyrtools.pyramids.filters import steerable_filters  # a dependency of lle
  f = steerable_filters("sp3_filters")
  n = int(round(math.sqrt(f["bfilts"].shape[0])))
  bands = tuple(np.asarray(f["bfilts"][:, b]).reshape(n, n).T for b in range(f["bfilts"].shape[1]))
  return np.asarray(f["hi0filt"]), np.asarray(f["lo0filt"]), np.asarray(f["lofilt"]), bands


# --- Pyramid (matlabPyrTools `buildSpyr` / `reconSpyr`, 'reflect1' edges). ---------------------------


def _corr_down(x, filt, step=1):
  """`corrDn(x, filt, 'reflect1', [step step])`: correlation with the image mirrored about its edge
  pixels, sampled from the first pixel every `step`."""
  kh, kw = filt.shape
  padded = jnp.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="reflect")
  out = jax.lax.conv_general_dilated(padded[None, None], jnp.asarray(filt, x.dtype)[None, None],
                                     (step, step), "VALID", precision=jax.lax.Precision.HIGHEST)
  return out[0, 0]


def _up_conv(y, filt, step, shape):
  """`upConv(y, filt, 'reflect1', [step step], [1 1], shape)`: `y` placed on every `step`-th pixel of a
  zero canvas of `shape`, then convolved (the filter flipped) with the canvas mirrored about its edge
  pixels. (Not the exact adjoint of `_corr_down` near the edges; this is what the original computes.)"""
  canvas = jnp.zeros(shape, y.dtype).at[::step, ::step].set(y)
  return _corr_down(canvas, np.asarray(filt)[::-1, ::-1])


def pyramid_height(shape, filter_size: int = 17) -> int:
  """`maxPyrHt`: how often the image halves before a side is smaller than the low-pass filter."""
  h, w = shape
  height = 0
  while h >= filter_size and w >= filter_size:
    height, h, w = height + 1, h // 2, w // 2
  return height


def build_pyramid(image):
  """[[hi0], [4 oriented bands] per level ..., [low-pass residual]] (`buildSpyr(im, 'auto', 'sp3Filters')`)."""
  hi0filt, lo0filt, lofilt, bfilts = _sp3_filters()
  height = pyramid_height(image.shape, lofilt.shape[0])  # 'auto'
  bands = [[_corr_down(image, hi0filt)]]
  lo = _corr_down(image, lo0filt)
  for _ in range(height):
    bands.append([_corr_down(lo, f) for f in bfilts])
    lo = _corr_down(lo, lofilt, 2)
  bands.append([lo])
  return bands


def reconstruct_pyramid(bands):
  """`reconSpyr(..., 'sp3Filters')`."""
  hi0filt, lo0filt, lofilt, bfilts = _sp3_filters()
  res = bands[-1][0]
  for level in reversed(bands[1:-1]):
    shape = level[0].shape
    res = _up_conv(res, lofilt, 2, shape)
    for band, f in zip(level, bfilts):
      res = res + _up_conv(band, f, 1, shape)
  shape = bands[0][0].shape
  return _up_conv(res, lo0filt, 1, shape) + _up_conv(bands[0][0], hi0filt, 1, shape)


# --- The metric. ------------------------------------------------------------------------------------


def _fft_filter(x, freq_filter, pad_value):
  """`fast_conv_fft`: `x` on a canvas of the filter's size filled with `pad_value` (after the image, as
  `padarray(..., 'post')`), multiplied by the real frequency response, cropped back."""
  h, w = x.shape
  canvas = jnp.full(freq_filter.shape, pad_value, x.dtype).at[:h, :w].set(x)
  filtered = jnp.fft.ifft2(jnp.fft.fft2(canvas) * jnp.asarray(freq_filter, x.dtype))
  return jnp.real(filtered)[:h, :w].astype(x.dtype)


def _imresize(x, shape):
  """MATLAB `imresize(x, shape)` (bicubic; antialiasing when shrinking), as HDR-VDP calls it."""
  from lle.metrics._imresize import resize_matrix
  if tuple(x.shape) == tuple(shape):
    return x
  rows = resize_matrix(x.shape[0], shape[0], shape[0] / x.shape[0])
  cols = resize_matrix(x.shape[1], shape[1], shape[1] / x.shape[1])
  hp = jax.lax.Precision.HIGHEST
  return jnp.einsum("oh,hw,pw->op", jnp.asarray(rows, x.dtype), x, jnp.asarray(cols, x.dtype), precision=hp)


def _box3(x):
  """`conv2(x, ones(3) / 9, 'same')`: zeros outside the image."""
  padded = jnp.pad(x, 1)
  h, w = x.shape
  return sum(padded[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9


def _sign_pow(x, e):
  return jnp.sign(x) * jnp.abs(x) ** e


def visual_pathway(image, emission_to_lmsr, ppd: float, bb_padvalue=None):
  """`hdrvdp_visual_pathway` for one [H, W, C] image in cd/m^2: (pyramid bands, adaptation luminance map,
  base-band pad value). The reference passes `bb_padvalue=None` and its value is reused for the test."""
  h, w, channels = image.shape
  mtf_freq = cycles_per_degree((2 * h, 2 * w), ppd)
  mtf = sum(a * np.exp(-b * mtf_freq) for a, b in zip(MTF_A, MTF_B))
  optical = jnp.stack([jnp.clip(_fft_filter(image[..., k], mtf, SURROUND_L), 1e-5, 1e10)
                       for k in range(channels)], axis=-1)
  lmsr = jnp.einsum("hwc,ck->hwk", optical, jnp.asarray(emission_to_lmsr, image.dtype),
                    precision=jax.lax.Precision.HIGHEST)
  l_adapt = lmsr[..., 0] + lmsr[..., 1]
  log_l, cone_jnd, rod_jnd = _jnd_tables()

  def response(x, jnd):
    log_x = jnp.log10(jnp.clip(x, 10 ** log_l[0], 10 ** log_l[-1]))
    return _interp(log_x, log_l, jnd)

  p_cone = response(lmsr[..., 0], cone_jnd) + response(lmsr[..., 1], cone_jnd)
  p_rod = response(lmsr[..., 3], rod_jnd)
  p = (p_cone - jnp.mean(p_cone)) + (p_rod - jnp.mean(p_rod))
  bands = build_pyramid(p)
  base = bands[-1][0]
  base_freq = 2.0 ** -(len(bands) - 1) * ppd / 2
  csf_bb = ncsf(cycles_per_degree((2 * base.shape[0], 2 * base.shape[1]), base_freq * 2 * math.sqrt(2)),
                jnp.mean(l_adapt), xp=jnp)
  if bb_padvalue is None:
    bb_padvalue = jnp.mean(base)
  bands[-1][0] = _fft_filter(base, csf_bb, bb_padvalue)
  return bands, l_adapt, bb_padvalue


def hdrvdp(test, reference, *, color_encoding: str = "rgb-bt.709", pixels_per_degree: float | None = None,
           rgb_display: str = "ccfl-lcd", release: str = DEFAULT_RELEASE) -> dict:
  """HDR-VDP-2 of one image pair in cd/m^2 ([H, W], [H, W, 1] or [H, W, 3]), as release `release` computes it.

  Returns {'Q', 'P_det', 'C_max', 'P_map', 'C_map'}, plus 'Q_MOS' for release 2.2.0. Q is the quality
  correlate: for 2.2.2 (and 2.2.1) 100 for identical images and lower for worse ones; for 2.2.0 a weighted
  mean log of the per-band visible differences, lower is better, and Q_MOS its logistic mapping to a
  0-100 mean opinion score (removed by 2.2.1 as unreliable). P_det is the probability that a difference
  is detected, C_max the peak threshold-normalised contrast (1 = detection threshold); both releases
  compute these two the same way.
  """
  if release not in RELEASES:
    raise ValueError(f"hdrvdp release {release!r} is not supported; expected one of {tuple(RELEASES)}")
  if color_encoding not in ENCODINGS:
    raise ValueError(f"hdrvdp color_encoding {color_encoding!r} is not supported; expected one of {ENCODINGS}")
  if test.shape != reference.shape:
    raise ValueError(f"hdrvdp: test {test.shape} and reference {reference.shape} differ in shape")
  ppd = pix_per_deg() if pixels_per_degree is None else float(pixels_per_degree)
  if test.ndim == 2:
    test, reference = test[..., None], reference[..., None]
  channels = test.shape[-1]
  if color_encoding == "luminance":
    if channels != 1:
      raise ValueError(f"hdrvdp 'luminance' encoding takes one channel; got shape {test.shape}")
    emission = EMISSION_TO_LMSR["d65"]
  else:
    if channels != 3:
      raise ValueError(f"hdrvdp {color_encoding!r} encoding takes 3 channels; got shape {test.shape}")
    if rgb_display not in ("ccfl-lcd", "led-lcd", "crt"):
      raise ValueError(f"hdrvdp rgb_display {rgb_display!r}; expected 'ccfl-lcd', 'led-lcd' or 'crt'")
    emission = EMISSION_TO_LMSR[rgb_display]
  if min(test.shape[:2]) < 17:
    raise ValueError(f"hdrvdp needs images of at least 17 x 17 pixels (the pyramid's low-pass filter); "
                     f"got {test.shape[:2]}")

  bands_r, l_adapt_r, bb_padvalue = visual_pathway(reference, emission, ppd)
  bands_t, l_adapt_t, _ = visual_pathway(test, emission, ppd, bb_padvalue)
  l_adapt = (l_adapt_t + l_adapt_r) / 2
  band_count = len(bands_t)
  band_freq = 2.0 ** -np.arange(band_count) * ppd / 2
  csf_log_la = np.linspace(-5, 5, 256)  # log10 of logspace(-5, 5, 256)
  log_la = jnp.log10(jnp.clip(l_adapt, 1e-5, 1e5))
  diff_mask = jnp.any(jnp.abs(test - reference) / reference > 0.001, axis=-1).astype(test.dtype)

  p, q = 10 ** MASK_P, 10 ** MASK_Q
  pf = 10 ** PSYCH_FUNC_SLOPE / p
  total_orientations = sum(len(b) for b in bands_t)

  def mutual_masking(b, o):
    o = min(o, len(bands_t[b]) - 1)
    return _box3(jnp.minimum(jnp.abs(bands_t[b][o]), jnp.abs(bands_r[b][o])))

  quality = 0.0  # the weighted log terms, accumulated (2.2.0: averaged over bands x orientations)
  d_bands = []
  for b in range(band_count):
    shape = bands_t[b][0].shape
    mask_xo = sum(mutual_masking(b, o) for o in range(len(bands_t[b])))
    log_la_b = jnp.clip(_imresize(log_la, shape), csf_log_la[0], csf_log_la[-1])
    csf_b = _interp(log_la_b, csf_log_la, ncsf(band_freq[b], 10 ** csf_log_la))
    band_norm = 2.0 ** b
    n_ncsf = 1.0 if b == band_count - 1 else 1 / csf_b
    w_f = quality_band_weight(band_freq[b], release)
    diff_mask_b = _imresize(diff_mask, shape)
    level = []
    for o in range(len(bands_t[b])):
      band_diff = bands_t[b][o] - bands_r[b][o]
      ex_diff = _sign_pow(band_diff / band_norm, p) * band_norm
      self_mask = mutual_masking(b, o)
      mask_xn = jnp.zeros(shape, test.dtype)
      if b > 0:
        mask_xn = jnp.maximum(_imresize(mutual_masking(b - 1, o), shape), 0) / (band_norm / 2)
      if b < band_count - 2:
        mask_xn = mask_xn + jnp.maximum(_imresize(mutual_masking(b + 1, o), shape), 0) / (band_norm * 2)
      band_mask_xo = jnp.maximum(mask_xo - self_mask, 0)
      n_mask = band_norm * (10 ** MASK_SELF * (self_mask / n_ncsf / band_norm) ** q
                            + 10 ** MASK_XO * (band_mask_xo / n_ncsf / band_norm) ** q
                            + 10 ** MASK_XN * (mask_xn / n_ncsf) ** q)
      d = ex_diff / jnp.sqrt(n_ncsf ** (2 * p) + n_mask ** 2)
      level.append(_sign_pow(d / band_norm, pf) * band_norm)
      d_p = d * diff_mask_b
      msre = jnp.sqrt(jnp.sum(d_p ** 2)) / d_p.size
      if release == "2.2.0":
        quality = quality + jnp.log(msre + QUALITY_EPSILON) * w_f / total_orientations
      else:
        quality = quality + (jnp.log(msre + QUALITY_EPSILON) - math.log(QUALITY_EPSILON)) * w_f
    d_bands.append(level)

  s_map = jnp.abs(reconstruct_pyramid(d_bands))
  s_map = jnp.sum(s_map) / (jnp.max(s_map) + 1e-12) * s_map  # spatial pooling
  p_map = 1 - jnp.exp(jnp.log(0.5) * s_map)
  out = {"P_det": jnp.max(p_map), "C_max": jnp.max(s_map), "P_map": p_map, "C_map": s_map}
  if release == "2.2.0":
    q_mos = 100 / (1 + jnp.exp(QUALITY_LOGISTIC_Q1 * (quality + QUALITY_LOGISTIC_Q2)))
    return {"Q": quality, "Q_MOS": q_mos, **out}
  return {"Q": 100 - quality, **out}


def scores(release: str = DEFAULT_RELEASE) -> tuple[str, ...]:
  """The scalar results of a release: ('Q', 'P_det', 'C_max'), with 'Q_MOS' after 'Q' for 2.2.0."""
  return ("Q", "Q_MOS", "P_det", "C_max") if release == "2.2.0" else ("Q", "P_det", "C_max")


@functools.partial(jax.jit, static_argnames=("color_encoding", "pixels_per_degree", "rgb_display", "release"))
def hdrvdp_batch(pred, target, *, release: str = DEFAULT_RELEASE, **kwargs) -> dict:
  """`hdrvdp` over a batch [N, H, W, C] (pred = test, target = reference): {name: [N]} for every name of
  `scores(release)`."""
  def one(p, t):
    out = hdrvdp(p, t, release=release, **kwargs)
    return {k: out[k] for k in scores(release)}
  return jax.vmap(one)(pred, target)

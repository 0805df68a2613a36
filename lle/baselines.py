"""Training-free baselines, scored beside every model: what a reader would try before training anything.

Each baseline is a pure function of the input image alone. None sees the target (a baseline that matched
the target's brightness would be an oracle, not a baseline). A method declares the baselines that apply
to its task in `Method.baselines`: `inverse_tone_mapping(config)` for iTMN, `low_light(config)` for
GLADNet, NEID, tmgan and IQE. Their parameters are the config fields `config.eval.baselines.*`
(`lle.config_lib`), each citing its source.

Array maths runs in JAX and is jit-compiled with the evaluation (`Baseline.host` False: the function maps
a batch [N, H, W, C] to a batch). What needs an iterative host library runs in numpy / scipy /
scikit-image on the host, one image at a time (`host` True: the evaluator calls it outside jit): CLAHE,
and BIMEF's sparse solve and one-dimensional entropy search.

Inverse tone mapping (LDR sRGB in [0, 1] -> PQ code values of cd/m^2, the iTMN network's target coding):
  * `identity_hdr`: the LDR image shown as it is, sRGB white at a fixed luminance.
  * `inverse_reinhard`: the inverse of Reinhard et al. 2002's simple operator L / (1 + L).
  * `linear_expansion`: Akyuz et al. 2007 ("Do HDR displays support LDR content?", iTMN ref. [7]).
Low light (sRGB in [0, 1] -> sRGB in [0, 1]):
  * `exposure_gamma`: one global exposure gain in linear light that brings the log-average luminance to
    middle grey, under a power-law gamma.
  * `clahe`: scikit-image's contrast-limited adaptive histogram equalisation (Zuiderveld 1994).
  * `multiscale_retinex`: Jobson, Rahman and Woodell 1997 (NEID Table 1's "MSR").
  * `bimef`: Ying, Li and Gao 2017 (NEID Table 1's "BIMEF"), as the authors' `BIMEF.m`.
"""
import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lle import color


@dataclasses.dataclass(frozen=True)
class Baseline:
  """A training-free system. `fn` maps a batch [N, H, W, C] -> [N, H', W', C] in JAX (`host` False), or
  one float64 image [H, W, C] -> [H', W', C] on the host (`host` True). Called with a batch either way."""
  fn: Callable
  host: bool = False

  def __call__(self, images):
    if not self.host:
      return self.fn(images)
    images = np.asarray(images, np.float64)
    return np.stack([np.asarray(self.fn(image), np.float64) for image in images]).astype(np.float32)


def after(prepare: Callable, baseline: Baseline) -> Baseline:
  """`baseline` applied to `prepare(images)` (a batched JAX function, e.g. NEID's bicubic 2x upsampling
  of its half-size input, so that every system is scored at the target's size). Every low-light
  baseline clips its input to [0, 1] first (bicubic upsampling overshoots a little)."""
  if not baseline.host:
    return Baseline(lambda images: baseline.fn(prepare(images)))
  prepared = jax.jit(prepare)
  return Baseline(lambda image: baseline.fn(np.asarray(prepared(image[None]), np.float64)[0]), host=True)


# --------------------------------------------------------------------------------------------------
# Inverse tone mapping: LDR sRGB -> PQ-coded cd/m^2.


def identity_hdr(ldr, *, white_nits: float):
  """The LDR input itself as an HDR image: sRGB-decoded (the input is display-referred sRGB, not PQ code
  values), white at `white_nits` cd/m^2, then PQ-coded like the network's output."""
  return color.pq_encode(color.srgb_to_linear(ldr) * white_nits)


def inverse_reinhard(ldr, *, nits_per_unit: float):
  """LDR (sRGB-encoded) -> inverse Reinhard (`lle.color.inverse_reinhard`) -> cd/m^2 -> PQ."""
  return color.pq_encode(color.inverse_reinhard(color.srgb_to_linear(ldr)) * nits_per_unit)


def linear_expansion(ldr, *, peak_nits: float, gamma: float, eps: float = 1e-12):
  """Akyuz et al. 2007's expansion of each image [N, H, W, 3]: on the luminance L of the linearised
  (sRGB-decoded) input, L_hdr = k ((L - L_min) / (L_max - L_min))^gamma with k = `peak_nits`, L_min and
  L_max the image's own extremes; colour kept by scaling RGB by L_hdr / L (a black pixel stays black).
  Then PQ-coded. The HDR Toolbox's `AkyuzEO.m` (Banterle) computes the same."""
  linear = color.srgb_to_linear(ldr)
  lum = color.luminance(linear)
  lo = jnp.min(lum, axis=(1, 2), keepdims=True)
  hi = jnp.max(lum, axis=(1, 2), keepdims=True)
  expanded = peak_nits * (jnp.clip(lum - lo, 0.0, None) / jnp.maximum(hi - lo, eps)) ** gamma
  ratio = jnp.where(lum > 0, expanded / jnp.where(lum > 0, lum, 1.0), 0.0)
  return color.pq_encode(linear * ratio[..., None])


def inverse_tone_mapping(config) -> dict[str, Baseline]:
  """iTMN's baselines with the parameters of `config.eval.baselines`."""
  b = config.eval.baselines
  return {
      "identity": Baseline(functools.partial(identity_hdr, white_nits=b.identity_white_nits)),
      "inverse_reinhard": Baseline(functools.partial(inverse_reinhard, nits_per_unit=b.inverse_reinhard_nits_per_unit)),
      "linear_expansion": Baseline(functools.partial(linear_expansion, peak_nits=b.linear_expansion.peak_nits,
                                                     gamma=b.linear_expansion.gamma)),
  }


# --------------------------------------------------------------------------------------------------
# Low light: sRGB -> sRGB.


def exposure_gamma(images, *, key: float, gamma: float, eps: float = 1e-6):
  """A global exposure correction [N, H, W, C] -> same: the input decoded by the power law x^gamma, each
  image multiplied by the one gain that brings its log-average luminance (Reinhard et al. 2002 eq. 1) to
  `key`, clipped to [0, 1] (highlights saturate, as a longer exposure would) and encoded by x^(1/gamma)."""
  linear = jnp.clip(images, 0.0, 1.0) ** gamma
  lum = color.luminance(linear) if images.shape[-1] == 3 else linear[..., 0]
  log_average = jnp.exp(jnp.mean(jnp.log(eps + lum), axis=(1, 2), keepdims=True))
  exposed = jnp.clip(linear * (key / log_average)[..., None], 0.0, 1.0)
  return jnp.where(exposed > 0, jnp.where(exposed > 0, exposed, 1.0) ** (1.0 / gamma), 0.0)


def clahe(image: np.ndarray, *, clip_limit: float, kernel_size, nbins: int) -> np.ndarray:
  """scikit-image's `exposure.equalize_adapthist` on one image [H, W, C] in [0, 1] (host). A colour image
  is equalised on HSV's value channel (scikit-image's own handling); `kernel_size` None is scikit-image's
  default, 1/8 of the image's height and width."""
  from skimage import exposure
  return exposure.equalize_adapthist(np.clip(image, 0.0, 1.0), kernel_size=kernel_size, clip_limit=clip_limit,
                                     nbins=nbins)


@functools.lru_cache(maxsize=64)
def _periodic_gaussian_spectrum(length: int, scale: float) -> np.ndarray:
  """DFT of Jobson's surround F(x) = K exp(-x^2 / c^2) (c = `scale`, sum 1 over the integers) wrapped
  onto a period of `length` samples; real, since the wrapped kernel is even."""
  copies = math.ceil(6.0 * scale / length) + 1
  offsets = np.arange(length)[:, None] + length * np.arange(-copies, copies + 1)[None, :]
  kernel = np.exp(-(offsets.astype(np.float64) / scale) ** 2).sum(axis=1)
  return np.fft.fft(kernel / kernel.sum()).real


def gaussian_surround(images, scale: float):
  """F * I for each channel of [N, H, W, C]: the image extended by mirror symmetry (edge pixels repeated,
  the extension repeated as far as the surround reaches), convolved with Jobson's Gaussian surround of
  scale c = `scale` pixels. Computed exactly as a circular convolution of the 2H x 2W mirrored image."""
  _, h, w, _ = images.shape
  mirrored = jnp.concatenate([images, images[:, ::-1]], axis=1)
  mirrored = jnp.concatenate([mirrored, mirrored[:, :, ::-1]], axis=2)
  rows = jnp.asarray(_periodic_gaussian_spectrum(2 * h, float(scale)), images.dtype)
  cols = jnp.asarray(_periodic_gaussian_spectrum(2 * w, float(scale))[:w + 1], images.dtype)
  spectrum = jnp.fft.rfft2(mirrored, axes=(1, 2)) * rows[None, :, None, None] * cols[None, None, :, None]
  return jnp.fft.irfft2(spectrum, s=(2 * h, 2 * w), axes=(1, 2))[:, :h, :w]


def retinex_log(images, *, scales) -> jax.Array:
  """Jobson et al. 1997 eq. 1-2, the multi-scale retinex in the log domain, each channel on its own:
  R = sum_n w_n [log I - log(F_n * I)], equal weights w_n = 1 / len(scales), on 8-bit values plus one
  (I = 255 x + 1: the log of a black pixel stays finite, as in the usual implementations)."""
  values = 255.0 * jnp.clip(images, 0.0, 1.0) + 1.0
  log_values = jnp.log(values)
  out = 0.0
  for scale in scales:
    out = out + (log_values - jnp.log(gaussian_surround(values, scale))) / len(scales)
  return out


def simplest_colour_balance(values, *, saturated: float):
  """Limare et al. 2011 ("Simplest color balance", IPOL), per image and channel: the `saturated`
  fraction of darkest and of brightest values go to 0 and 1, the rest are stretched affinely between."""
  lo = jnp.quantile(values, saturated, axis=(1, 2), keepdims=True)
  hi = jnp.quantile(values, 1.0 - saturated, axis=(1, 2), keepdims=True)
  return jnp.clip((values - lo) / jnp.maximum(hi - lo, 1e-12), 0.0, 1.0)


def multiscale_retinex(images, *, scales, saturated: float):
  """MSR [N, H, W, C] -> [0, 1]: `retinex_log`, then `simplest_colour_balance` to display values."""
  return simplest_colour_balance(retinex_log(images, scales=scales), saturated=saturated)


# BIMEF.m's fixed constants (github baidut/BIMEF, lowlight/BIMEF.m).
BIMEF_SMOOTH_SCALE = 0.5  # t_our: the illumination is smoothed at half size (imresize(t_b, 0.5))
BIMEF_ENTROPY_SIZE = 50  # maxEntropyEnhance: the exposure ratio is chosen on a 50 x 50 copy
BIMEF_K_RANGE = (1.0, 7.0)  # maxEntropyEnhance: fminbnd over k in [1, 7]
BIMEF_K_TOLERANCE = 1e-4  # fminbnd's default TolX (MATLAB and Octave)
BIMEF_DARK = 0.5  # isBad = t_our < 0.5: the pixels whose entropy chooses k
BIMEF_OFFSET = 0.01  # J = applyK(I, k) - 0.01
BIMEF_DEFAULT_A, BIMEF_DEFAULT_B = -0.3293, 1.1258  # applyK's defaults, used by the entropy search


def _imresize(x: np.ndarray, height: int, width: int, scale=None) -> np.ndarray:
  """MATLAB `imresize` (bicubic, antialiasing when shrinking) of [H, W] or [H, W, C] float64, to
  height x width; `scale` is the scalar factor when one was given (it sets the sampling grid)."""
  from lle.metrics import _imresize as matlab
  h, w = x.shape[:2]
  rows = matlab.resize_matrix(h, height, float(scale or height / h))
  cols = matlab.resize_matrix(w, width, float(scale or width / w))
  return np.einsum("pw,ow...->op...", cols, np.einsum("oh,hw...->ow...", rows, x))


def _box_same(x: np.ndarray, size: int, axis: int) -> np.ndarray:
  """MATLAB `filter2(ones(size, 1), x)` ('same', zeros outside) along `axis`."""
  before, after_ = (size - 1) // 2, size // 2
  pad = [(0, 0)] * x.ndim
  pad[axis] = (before, after_)
  padded = np.pad(x, pad)
  n = x.shape[axis]
  return sum(np.take(padded, np.arange(offset, offset + n), axis=axis) for offset in range(size))


def smooth_illumination(t: np.ndarray, *, lam: float, sigma: int, sharpness: float) -> np.ndarray:
  """BIMEF.m's `tsmooth` (Xu et al. 2012's relative-total-variation weights, one linear solve): S solves
  (I + lam L) S = t, L the graph Laplacian of the 4-neighbour grid with periodic edges, each edge weighted
  1 / (|box_sigma * d| |d| + sharpness), d the forward difference across it (wrapping around).

  BIMEF.m solves with pcg (tolerance 0.1, 50 iterations, incomplete Cholesky) where `ichol` is a
  built-in function, else with a direct solve (`A \\ b`: GNU Octave); this is the direct solve."""
  from scipy import sparse
  from scipy.sparse import linalg
  rows_n, cols_n = t.shape
  d_h = np.roll(t, -1, axis=1) - t
  d_v = np.roll(t, -1, axis=0) - t
  w_h = 1.0 / (np.abs(_box_same(d_h, sigma, axis=1)) * np.abs(d_h) + sharpness)
  w_v = 1.0 / (np.abs(_box_same(d_v, sigma, axis=0)) * np.abs(d_v) + sharpness)
  index = np.arange(t.size).reshape(t.shape)
  start = np.concatenate([index.ravel(), index.ravel()])
  end = np.concatenate([np.roll(index, -1, axis=1).ravel(), np.roll(index, -1, axis=0).ravel()])
  weight = lam * np.concatenate([w_h.ravel(), w_v.ravel()])
  degree = np.bincount(start, weight, t.size) + np.bincount(end, weight, t.size)
  off = sparse.coo_matrix((-weight, (start, end)), shape=(t.size, t.size))
  system = (off + off.T + sparse.diags(1.0 + degree)).tocsc()
  # A symmetric system: SuperLU with a minimum-degree ordering of A + A^T (2x faster than the default).
  return linalg.spsolve(system, t.ravel(), permc_spec="MMD_AT_PLUS_A").reshape(rows_n, cols_n)


def _apply_k(x, k, a, b):
  """BIMEF's camera response model: the image exposed k times more, beta x^gamma with gamma = k^a and
  beta = exp((1 - k^a) b) (Ying et al. 2017's beta-gamma brightness transform)."""
  return x ** (k**a) * np.exp((1.0 - k**a) * b)


def _entropy(values: np.ndarray) -> float:
  """MATLAB / Octave `entropy` of a double array: im2uint8 (x 255, rounded, saturated), a 256-bin
  histogram, -sum p log2 p."""
  codes = np.clip(np.floor(values * 255.0 + 0.5), 0, 255).astype(np.int64)
  p = np.bincount(codes.ravel(), minlength=256) / codes.size
  p = p[p > 0]
  return float(-np.sum(p * np.log2(p)))


def bimef_exposure_ratio(image: np.ndarray, dark: np.ndarray) -> float | None:
  """BIMEF.m's `maxEntropyEnhance`: the exposure ratio k in [1, 7] (fminbnd, Brent's method) that
  maximises the entropy of the exposed geometric-mean brightness of the dark pixels of a 50 x 50 copy;
  None when no pixel is dark (BIMEF.m then keeps the image: J = I). The resized dark mask is thresholded
  at 1/2 (GNU Octave's image package 2.14 instead casts it to logical, so that any nonzero value counts)."""
  from scipy import optimize
  small = np.maximum(_imresize(image, BIMEF_ENTROPY_SIZE, BIMEF_ENTROPY_SIZE), 0.0)
  brightness = np.prod(small, axis=2) ** (1.0 / 3.0) if small.shape[2] == 3 else small[..., 0]
  mask = _imresize(dark.astype(np.float64), BIMEF_ENTROPY_SIZE, BIMEF_ENTROPY_SIZE) > 0.5
  values = brightness[mask]
  if values.size == 0:
    return None
  return float(optimize.fminbound(
      lambda k: -_entropy(_apply_k(values, k, BIMEF_DEFAULT_A, BIMEF_DEFAULT_B)), *BIMEF_K_RANGE,
      xtol=BIMEF_K_TOLERANCE))


def bimef(image: np.ndarray, *, mu: float, a: float, b: float, lam: float, sigma: int, sharpness: float) -> np.ndarray:
  """Ying et al. 2017's BIMEF on one image [H, W, C] in [0, 1] (host, float64), as the authors'
  `BIMEF.m` with k chosen automatically: the illumination t = max over channels, smoothed at half size
  (`smooth_illumination`) and resized back (MATLAB bicubic); the input exposed by the entropy-maximising
  ratio k (`bimef_exposure_ratio`, its `applyK` minus 0.01); the two fused with weights W = t^mu:
  I W + J (1 - W). Not clipped (the evaluator clips every system to [0, 1]). Where bicubic resizing
  leaves t slightly negative, W is the real part of t^mu, as MATLAB computes it."""
  image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)  # BIMEF.m's input: im2double of an image
  h, w = image.shape[:2]
  brightest = image.max(axis=2)
  half = _imresize(brightest, math.ceil(h * BIMEF_SMOOTH_SCALE), math.ceil(w * BIMEF_SMOOTH_SCALE),
                   scale=BIMEF_SMOOTH_SCALE)
  t = _imresize(smooth_illumination(half, lam=lam, sigma=sigma, sharpness=sharpness), h, w)
  k = bimef_exposure_ratio(image, t < BIMEF_DARK)
  exposed = image if k is None else _apply_k(image, k, a, b) - BIMEF_OFFSET
  weight = np.real(np.power(t.astype(np.complex128), mu))[..., None]
  return image * weight + exposed * (1.0 - weight)


def low_light(config, *, prepare: Callable | None = None) -> dict[str, Baseline]:
  """The low-light methods' baselines with the parameters of `config.eval.baselines`; each applied to
  `prepare(images)` when given (NEID: its half-size input upsampled to the output's size)."""
  b = config.eval.baselines
  out = {
      "identity": Baseline(lambda images: images),
      "exposure_gamma": Baseline(functools.partial(exposure_gamma, key=b.exposure_gamma.key,
                                                   gamma=b.exposure_gamma.gamma)),
      "clahe": Baseline(functools.partial(clahe, clip_limit=b.clahe.clip_limit, kernel_size=b.clahe.kernel_size,
                                          nbins=b.clahe.nbins), host=True),
      "msr": Baseline(functools.partial(multiscale_retinex, scales=tuple(b.msr.scales), saturated=b.msr.saturated)),
      "bimef": Baseline(functools.partial(bimef, mu=b.bimef.mu, a=b.bimef.a, b=b.bimef.b, lam=b.bimef.lam,
                                          sigma=b.bimef.sigma, sharpness=b.bimef.sharpness), host=True),
  }
  return out if prepare is None else {name: after(prepare, baseline) for name, baseline in out.items()}

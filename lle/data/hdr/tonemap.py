"""Global tone-mapping operators that make the 8-bit LDR inputs of (LDR, HDR) pairs.

Each operator maps a linear HDR image [H, W, 3] (any positive scale: every operator normalises by the
image's own statistics) to linear display RGB in [0, 1]; `to_ldr` sRGB-encodes and quantises it.
  * `reinhard`: Reinhard et al. 2002 global operator (key 0.18, white = the brightest pixel), the
    operator iTMN names (Ning et al. 2018, sec. 4); `lle.color.reinhard_global`. Its `key` and `white`
    (L_white of eq. 4, as a fraction of the brightest scaled luminance) can be set.
  * `drago`: Drago et al. 2003 adaptive logarithmic mapping (bias 0.85, L_dmax = 100 cd/m^2), on the
    luminance scaled by its log-average; colour carried by the luminance ratio.
  * `exposure`: a linear exposure: the log-average luminance goes to 0.18, then clipping.
  * `camera`: a camera's exposure: each channel multiplied by the gain that saturates a fraction
    `clipped` of the pixels' luminance, clipped at the sensor's 1, then Ying et al. 2017's camera
    response curve f(E) = exp(b (1 - E^a)) (the file holds f(E); as display light: its sRGB decoding).
  * `mixture`: per image one of `reinhard`, `drago` and `camera` with its parameters drawn from
    `MIXTURE` (`draw`), by `np.random.default_rng([seed, hash(name)])`: fixed by the seed and the name.
    Ning et al. 2018 (sec. 4) made iTMN's LDR inputs with "tone mapping operators including ReinhardTMO
    [16] and so on"; a mixture keeps any single fixed operator (and a baseline that inverts it) from
    being the one that made the data.
"""
import dataclasses
import hashlib

import numpy as np

from lle import color

OPERATORS = ("reinhard", "drago", "exposure", "camera")
DRAGO_BIAS = 0.85  # Drago et al. 2003, sec. 3 (the recommended value)
KEY = 0.18  # Reinhard et al. 2002's middle grey
# Ying, Li and Gao 2017's camera response model (the parameters of their BIMEF.m, fitted to real cameras).
CAMERA_A, CAMERA_B = -0.3293, 1.1258
CAMERA_CLIPPED = 0.02  # `camera` alone: 2% of the pixels saturate (not from a paper)
_EPS = 1e-6

# `mixture`: (family, {parameter: (low, high, "log" | "linear")}), each family equally likely.
MIXTURE = (
    # Reinhard et al. 2002 sec. 3.1: key 0.18 for a scene of average key, down to 0.09 (or 0.045) for a
    # low-key and up to 0.36 (or 0.72) for a high-key rendering; L_white (eq. 4) below the brightest
    # luminance burns the brightest highlights out.
    ("reinhard", {"key": (0.09, 0.36, "log"), "white": (0.5, 1.0, "linear")}),
    # Drago et al. 2003 sec. 3.2: bias values between 0.7 and 0.9 give the most useful results.
    ("drago", {"bias": (0.7, 0.9, "linear")}),
    # Not from a paper: from 0.5% to 5% of the pixels clipped, the highlights an auto-exposed camera loses.
    ("camera", {"clipped": (0.005, 0.05, "log")}),
)


def _log_average(lum: np.ndarray) -> float:
  return float(np.exp(np.mean(np.log(_EPS + lum))))


def _carry_colour(hdr: np.ndarray, lum: np.ndarray, lum_display: np.ndarray) -> np.ndarray:
  ratio = lum_display / np.maximum(lum, _EPS)
  return np.clip(hdr * ratio[..., None], 0.0, 1.0)


def reinhard(hdr: np.ndarray, *, key: float = KEY, white: float = 1.0) -> np.ndarray:
  """Reinhard's global operator; `white`: L_white as a fraction of the brightest scaled luminance."""
  if white == 1.0:
    return np.asarray(color.reinhard_global(hdr, key=key), dtype=np.float64)
  lum = np.asarray(color.luminance(hdr), dtype=np.float64)
  brightest = key / _log_average(lum) * float(lum.max())
  return np.asarray(color.reinhard_global(hdr, key=key, white=white * brightest), dtype=np.float64)


def drago(hdr: np.ndarray, *, bias: float = DRAGO_BIAS) -> np.ndarray:
  lum = np.asarray(color.luminance(hdr), dtype=np.float64)
  lw = lum / _log_average(lum)  # world luminance in units of the adaptation luminance
  lw_max = float(lw.max())
  exponent = np.log(bias) / np.log(0.5)
  # L_d = (L_dmax / 100) / log10(L_wmax + 1) * log(L_w + 1) / log(2 + 8 (L_w / L_wmax)^(log b / log 0.5))
  display = (np.log(lw + 1.0) / np.log(2.0 + 8.0 * (lw / lw_max) ** exponent)) / np.log10(lw_max + 1.0)
  return _carry_colour(hdr, lum, display)


def exposure(hdr: np.ndarray) -> np.ndarray:
  lum = np.asarray(color.luminance(hdr), dtype=np.float64)
  return np.clip(hdr * (KEY / _log_average(lum)), 0.0, 1.0)


def camera_response(exposure_values: np.ndarray) -> np.ndarray:
  """Ying et al. 2017's camera response f(E) = exp(b (1 - E^a)) on [0, 1] (f(0) = 0, f(1) = 1)."""
  e = np.asarray(exposure_values, dtype=np.float64)
  safe = np.maximum(e, 1e-12)
  return np.where(e > 0, np.exp(CAMERA_B * (1.0 - safe**CAMERA_A)), 0.0)


def camera(hdr: np.ndarray, *, clipped: float = CAMERA_CLIPPED) -> np.ndarray:
  """A camera exposure: gain 1 / (the (1 - clipped) quantile of luminance), each channel clipped at 1,
  then the camera response; returned as display light (the sRGB decoding of the response's codes)."""
  lum = np.asarray(color.luminance(hdr), dtype=np.float64)
  gain = 1.0 / max(float(np.quantile(lum, 1.0 - clipped)), _EPS)
  codes = camera_response(np.clip(np.asarray(hdr, np.float64) * gain, 0.0, 1.0))
  return np.asarray(color.srgb_to_linear(codes), dtype=np.float64)


_FUNCTIONS = {"reinhard": reinhard, "drago": drago, "exposure": exposure, "camera": camera}


@dataclasses.dataclass(frozen=True)
class ToneMap:
  """One operator with its parameters (`()`: the operator's defaults); `str` names both, and is what the
  builders store in the `operator` feature."""
  operator: str
  params: tuple = ()

  def __str__(self):
    if not self.params:
      return self.operator
    return f"{self.operator}(" + ", ".join(f"{k}={v:.4g}" for k, v in self.params) + ")"


def draw(name: str, seed: int) -> ToneMap:
  """The `mixture`'s operator and parameters for the image `name`: a function of (seed, name) alone."""
  digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
  rng = np.random.default_rng([seed, digest])
  family, ranges = MIXTURE[int(rng.integers(len(MIXTURE)))]
  params = []
  for key, (low, high, scale) in ranges.items():
    u = rng.uniform()
    value = float(np.exp(np.log(low) + u * (np.log(high) - np.log(low)))) if scale == "log" else low + u * (high - low)
    params.append((key, value))
  return ToneMap(family, tuple(params))


def choose(operator: str, name: str, seed: int) -> ToneMap:
  """The tone map an image gets: `operator` with its defaults, or for `mixture` a seeded draw per name."""
  if operator in OPERATORS:
    return ToneMap(operator)
  if operator != "mixture":
    raise ValueError(f"unknown tone-mapping operator {operator!r}; expected one of {OPERATORS + ('mixture',)}")
  return draw(name, seed)


def apply(tone_map, hdr: np.ndarray) -> np.ndarray:
  """Linear display RGB in [0, 1] of `hdr` under `tone_map` (a `ToneMap`, or an operator's name)."""
  tone_map = ToneMap(tone_map) if isinstance(tone_map, str) else tone_map
  fn = _FUNCTIONS.get(tone_map.operator)
  if fn is None:
    raise ValueError(f"unknown tone-mapping operator {tone_map.operator!r}; expected one of {OPERATORS}")
  return fn(np.asarray(hdr, dtype=np.float64), **dict(tone_map.params))


def to_ldr(tone_map, hdr: np.ndarray) -> np.ndarray:
  """The 8-bit LDR input: `tone_map`, sRGB-encoded (IEC 61966-2-1), rounded to uint8."""
  display = apply(tone_map, hdr)
  return np.round(np.asarray(color.linear_to_srgb(display)) * 255.0).astype(np.uint8)

"""Global tone-mapping operators that make the 8-bit LDR inputs of (LDR, HDR) pairs.

Each operator maps a linear HDR image [H, W, 3] (any positive scale: every operator normalises by the
image's own statistics) to linear display RGB in [0, 1]; `to_ldr` sRGB-encodes and quantises it.
  * `reinhard`: Reinhard et al. 2002 global operator (key 0.18, white = the brightest pixel), the
    operator iTMN names (Ning et al. 2018, sec. 4); `lle.color.reinhard_global`.
  * `drago`: Drago et al. 2003 adaptive logarithmic mapping (bias 0.85, L_dmax = 100 cd/m^2), on the
    luminance scaled by its log-average; colour carried by the luminance ratio.
  * `exposure`: a camera-like linear exposure: the log-average luminance goes to 0.18, then clipping.
  * `mixture`: per image one of the above, drawn from `np.random.default_rng([seed, hash(name)])`, so
    the choice is fixed by the seed and the image's name.
"""
import hashlib

import numpy as np

from lle import color

OPERATORS = ("reinhard", "drago", "exposure")
DRAGO_BIAS = 0.85  # Drago et al. 2003, sec. 3 (the recommended value)
KEY = 0.18  # Reinhard et al. 2002's middle grey
_EPS = 1e-6


def _log_average(lum: np.ndarray) -> float:
  return float(np.exp(np.mean(np.log(_EPS + lum))))


def _carry_colour(hdr: np.ndarray, lum: np.ndarray, lum_display: np.ndarray) -> np.ndarray:
  ratio = lum_display / np.maximum(lum, _EPS)
  return np.clip(hdr * ratio[..., None], 0.0, 1.0)


def reinhard(hdr: np.ndarray) -> np.ndarray:
  return np.asarray(color.reinhard_global(hdr, key=KEY), dtype=np.float64)


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


def choose(operator: str, name: str, seed: int) -> str:
  """The operator an image gets: `operator` itself, or for `mixture` a seeded draw per image name."""
  if operator in OPERATORS:
    return operator
  if operator != "mixture":
    raise ValueError(f"unknown tone-mapping operator {operator!r}; expected one of {OPERATORS + ('mixture',)}")
  digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
  return OPERATORS[int(np.random.default_rng([seed, digest]).integers(len(OPERATORS)))]


def apply(operator: str, hdr: np.ndarray) -> np.ndarray:
  """Linear display RGB in [0, 1] of `hdr` under one of `OPERATORS`."""
  fn = {"reinhard": reinhard, "drago": drago, "exposure": exposure}.get(operator)
  if fn is None:
    raise ValueError(f"unknown tone-mapping operator {operator!r}; expected one of {OPERATORS}")
  return fn(np.asarray(hdr, dtype=np.float64))


def to_ldr(operator: str, hdr: np.ndarray) -> np.ndarray:
  """The 8-bit LDR input: `operator`, sRGB-encoded (IEC 61966-2-1), rounded to uint8."""
  display = apply(operator, hdr)
  return np.round(np.asarray(color.linear_to_srgb(display)) * 255.0).astype(np.uint8)

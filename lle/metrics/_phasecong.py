"""Phase-congruency feature type (Kovesi's ``phasecong3``, as trimmed to ``phasecong100`` for FSITM).

Only the output FSITM uses is computed: the local phase angle ("feature type")
``atan2(E_even, |E_odd|)`` of the summed log-Gabor responses, which is ``pi/2`` on a bright line,
``0`` on a step and ``-pi/2`` on a dark line. Filters are built in float64 numpy once per image shape
(static under jit) and applied in the Fourier domain.
"""

from __future__ import annotations

import functools

import chex
import jax.numpy as jnp
import numpy as np


def _freq_range(n: int) -> np.ndarray:
  # Kovesi's normalised frequency axis: symmetric for odd sizes, one extra negative bin for even.
  if n % 2:
    return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
  return np.arange(-n / 2, n / 2) / n


def _lowpass(rows: int, cols: int, cutoff: float, order: int) -> np.ndarray:
  """Kovesi's ``lowpassfilter``: Butterworth ``1 / (1 + (r / cutoff)^(2 order))``, origin at corners."""
  x, y = np.meshgrid(_freq_range(cols), _freq_range(rows))
  radius = np.sqrt(x**2 + y**2)
  return np.fft.ifftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * order)))


@functools.lru_cache(maxsize=32)
def energy_filters(
    rows: int,
    cols: int,
    nscale: int,
    norient: int,
    min_wavelength: float,
    mult: float,
    sigma_onf: float = 0.65,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Transfer functions ``(G1, G2, G3)`` of the three energy components of ``phasecong100``.

  ``phasecong100`` sums, over orientations ``o`` and scales ``s``, the response ``EO = ifft2(F G_so)``
  with ``G_so = logGabor_s * lowpass * spread_o`` and accumulates ``E1 = sum real(EO)``,
  ``E2 = sum cos(angle_o) imag(EO)``, ``E3 = sum sin(angle_o) imag(EO)``. The inverse FFT is linear,
  so each component is one inverse FFT of ``F`` times a summed filter: ``G1 = sum G_so``,
  ``G2 = sum cos(angle_o) G_so``, ``G3 = sum sin(angle_o) G_so``.
  """
  x, y = np.meshgrid(_freq_range(cols), _freq_range(rows))
  radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
  theta = np.fft.ifftshift(np.arctan2(-y, x))
  radius[0, 0] = 1.0  # avoids log(0); the DC value of every filter is zeroed below
  sintheta, costheta = np.sin(theta), np.cos(theta)
  lp = _lowpass(rows, cols, 0.45, 15)

  radial = np.zeros((rows, cols))
  for s in range(nscale):
    fo = 1.0 / (min_wavelength * mult**s)
    log_gabor = np.exp(-(np.log(radius / fo) ** 2) / (2.0 * np.log(sigma_onf) ** 2)) * lp
    log_gabor[0, 0] = 0.0
    radial += log_gabor

  g1, g2, g3 = (np.zeros((rows, cols)) for _ in range(3))
  for o in range(norient):
    angle = o * np.pi / norient
    ds = sintheta * np.cos(angle) - costheta * np.sin(angle)
    dc = costheta * np.cos(angle) + sintheta * np.sin(angle)
    dtheta = np.minimum(np.abs(np.arctan2(ds, dc)) * norient / 2.0, np.pi)
    spread = (np.cos(dtheta) + 1.0) / 2.0
    g = radial * spread
    g1 += g
    g2 += np.cos(angle) * g
    g3 += np.sin(angle) * g
  return g1, g2, g3


def feature_type(
    image: chex.Array,
    *,
    nscale: int,
    norient: int,
    min_wavelength: float,
    mult: float,
    sigma_onf: float = 0.65,
) -> chex.Array:
  """``phasecong100(im, nscale, norient, minWaveLength, mult)`` on a batch ``[N, H, W]``: the
  feature phase ``atan2(E1, sqrt(E2^2 + E3^2))`` in ``[-pi/2, pi/2]``."""
  chex.assert_rank(image, 3)
  rows, cols = image.shape[1], image.shape[2]
  g1, g2, g3 = energy_filters(rows, cols, nscale, norient, float(min_wavelength), float(mult),
                              float(sigma_onf))
  ctype = jnp.complex128 if image.dtype == jnp.float64 else jnp.complex64
  spectrum = jnp.fft.fft2(image.astype(ctype))
  e1 = jnp.real(jnp.fft.ifft2(spectrum * g1.astype(ctype)))
  e2 = jnp.imag(jnp.fft.ifft2(spectrum * g2.astype(ctype)))
  e3 = jnp.imag(jnp.fft.ifft2(spectrum * g3.astype(ctype)))
  return jnp.arctan2(e1, jnp.sqrt(e2 * e2 + e3 * e3))

"""Named metrics for configs and for the folder scorer.

``METRICS[name](pred, target, data_range=...)`` returns a dict of reported values, each of shape
``[N]``; most metrics report one value under their own name, FSITM and TMQI report several. The
names are the ones ``python -m lle.metrics.score --metrics`` accepts.

Conventions shared by all entries:

* ``data_range`` is the peak of the display-referred (LDR) images: 1.0 for float images in
  ``[0, 1]``, 255.0 for 8-bit values (the scorer passes 255: 8-bit files keep their 0-255 values,
  16-bit files are mapped onto the same 0-255 scale), so MSE is on the scale of the input.
* HDR images (``mpsnr*``, ``pu_*``, ``hdrvdp2`` both sides; ``fsitm``, ``tmqi`` the target) are linear values used
  as given; PU21 expects them in cd/m^2.
* ``fsitm`` and ``tmqi``: ``target`` is the HDR image, ``pred`` its tone-mapped LDR version.
* ``hdrvdp2`` is HDR-VDP release 2.2.2 (``hdrvdp2_metric(release)`` for 2.2.0, whose columns add
  ``hdrvdp2_qmos``).
* ``niqe`` is no-reference: ``target`` is ignored and may be ``None``. It runs on the host in float64
  (``host=True``: not inside ``jax.jit``), the precision its reference scores depend on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

import chex
import jax.numpy as jnp

from lle.metrics import fidelity
from lle.metrics import feature_similarity as fsitm_lib
from lle.metrics import hdr
from lle.metrics import hdrvdp as hdrvdp_lib
from lle.metrics import naturalness as niqe_lib
from lle.metrics import pu21
from lle.metrics import tonemap_quality


@dataclasses.dataclass(frozen=True)
class Metric:
  """A named metric: ``fn(pred, target, data_range) -> {column: [N] array}`` plus what it needs."""

  name: str
  fn: Callable[[chex.Array, chex.Array | None, float], Mapping[str, chex.Array]]
  columns: tuple[str, ...]
  # Whether a reference image is needed, and which inputs are linear HDR.
  needs_target: bool = True
  hdr_pred: bool = False
  hdr_target: bool = False
  # Computed on the host in float64 from concrete arrays: callers must not wrap it in jax.jit.
  host: bool = False
  doc: str = ''

  def __call__(self, pred, target=None, *, data_range: float = 1.0) -> dict[str, chex.Array]:
    if self.needs_target and target is None:
      raise ValueError(f'metric {self.name!r} needs a target image')
    return dict(self.fn(pred, target, data_range))


def _gray_or_y(x):
  # psnr_y / ssim_y on a single-channel pair score that channel: there is no colour to convert.
  return x.shape[-1] == 3


def _fsitm(p, t, dr):
  res = fsitm_lib.fsitm(p, t, data_range=dr)
  return {'fsitm_r': res.r, 'fsitm_g': res.g, 'fsitm_b': res.b, 'fsitm': res.mean}


def _tmqi(p, t, dr):
  res = tonemap_quality.tmqi(p, t, data_range=dr)
  return {'tmqi_q': res.q, 'tmqi_s': res.s, 'tmqi_n': res.n}


_HDRVDP_COLUMNS = {'Q': 'hdrvdp2_q', 'Q_MOS': 'hdrvdp2_qmos', 'P_det': 'hdrvdp2_pdet', 'C_max': 'hdrvdp2_cmax'}


def hdrvdp2_metric(release: str = hdrvdp_lib.DEFAULT_RELEASE) -> Metric:
  """``hdrvdp2`` as HDR-VDP release ``release`` computes it: ``hdrvdp2_q`` is that release's Q (2.2.2: 0-100,
  higher is better; 2.2.0: a log score, lower is better, with its 0-100 ``hdrvdp2_qmos``)."""
  if release not in hdrvdp_lib.RELEASES:
    raise ValueError(f'hdrvdp2 release {release!r}; expected one of {tuple(hdrvdp_lib.RELEASES)}')
  names = hdrvdp_lib.scores(release)

  def fn(pred, target, data_range):
    del data_range  # absolute cd/m^2 on both sides
    out = hdrvdp_lib.hdrvdp_batch(pred, target, color_encoding='rgb-bt.709', release=release)
    return {_HDRVDP_COLUMNS[k]: out[k] for k in names}

  return Metric('hdrvdp2', fn, tuple(_HDRVDP_COLUMNS[k] for k in names), hdr_pred=True, hdr_target=True,
                doc=f'HDR-VDP {release} (rgb, cd/m^2, 24-inch 1920x1200 display at 0.5 m): '
                    + ', '.join(names))


_ENTRIES = (
    Metric('mse', lambda p, t, dr: {'mse': fidelity.mse(p, t, data_range=dr)}, ('mse',),
           doc='mean squared error over pixels and channels, on the input scale'),
    Metric('mse_8bit', lambda p, t, dr: {'mse_8bit': fidelity.mse(p, t, data_range=dr) * (255.0 / dr) ** 2},
           ('mse_8bit',), doc='mean squared error on the 8-bit scale (0-255), as Montulet & Briassouli Table 1'),
    Metric('psnr', lambda p, t, dr: {'psnr': fidelity.psnr(p, t, data_range=dr)}, ('psnr',),
           doc='10 log10(peak^2 / MSE), all channels'),
    Metric('psnr_y',
           lambda p, t, dr: {'psnr_y': fidelity.psnr(p, t, data_range=dr, y_channel=_gray_or_y(p))},
           ('psnr_y',), doc='PSNR on BT.601 Y (MATLAB rgb2ycbcr)'),
    Metric('psnr_l', lambda p, t, dr: {'psnr_l': fidelity.psnr_lightness(p, t, data_range=dr)}, ('psnr_l',),
           doc='PSNR of CIELAB L (sRGB, D65), peak 100: tone without colour'),
    Metric('ssim', lambda p, t, dr: {'ssim': fidelity.ssim(p, t, data_range=dr)}, ('ssim',),
           doc="Wang's ssim_index: 11x11 Gaussian, 'valid', per channel averaged"),
    Metric('ssim_y',
           lambda p, t, dr: {'ssim_y': fidelity.ssim(p, t, data_range=dr, y_channel=_gray_or_y(p))},
           ('ssim_y',), doc='ssim on BT.601 Y'),
    Metric('ssim_matlab',
           lambda p, t, dr: {'ssim_matlab': fidelity.ssim(p, t, data_range=dr, downsample=True)},
           ('ssim_matlab',), doc="Wang's 2009 ssim.m (automatic downsampling), per channel averaged"),
    Metric('ms_ssim', lambda p, t, dr: {'ms_ssim': fidelity.ms_ssim(p, t, data_range=dr)},
           ('ms_ssim',), doc='multi-scale SSIM, five scales'),
    Metric('ms_ssim_dped', lambda p, t, dr: {'ms_ssim_dped': fidelity.ms_ssim_dped(p, t, data_range=dr)},
           ('ms_ssim_dped',),
           doc="DPED's ssim.py MultiScaleSSIM per image: window min(11, H, W), any size (100x100 patches)"),
    Metric('fsitm', _fsitm, ('fsitm_r', 'fsitm_g', 'fsitm_b', 'fsitm'), hdr_target=True,
           doc='FSITM per channel and mean; target HDR, pred tone-mapped'),
    Metric('tmqi', _tmqi, ('tmqi_q', 'tmqi_s', 'tmqi_n'), hdr_target=True,
           doc='TMQI quality, structural fidelity, naturalness; target HDR, pred tone-mapped'),
    Metric('mpsnr', lambda p, t, dr: {'mpsnr': hdr.mpsnr(p, t)}, ('mpsnr',), hdr_pred=True,
           hdr_target=True, doc='Munkberg multi-exposure PSNR, stops -3..3, averaged'),
    Metric('mpsnr_hdrtoolbox', lambda p, t, dr: {'mpsnr_hdrtoolbox': hdr.mpsnr_hdrtoolbox(p, t)},
           ('mpsnr_hdrtoolbox',), hdr_pred=True, hdr_target=True,
           doc='HDR Toolbox mPSNR.m: automatic stops, exposure filter, summed MSE'),
    Metric('pu_psnr', lambda p, t, dr: {'pu_psnr': pu21.pu_psnr(p, t)}, ('pu_psnr',), hdr_pred=True,
           hdr_target=True, doc='PSNR of PU21-encoded RGB (cd/m^2), peak 256'),
    Metric('pu_ssim', lambda p, t, dr: {'pu_ssim': pu21.pu_ssim(p, t)}, ('pu_ssim',), hdr_pred=True,
           hdr_target=True, doc="MATLAB ssim of PU21-encoded luminance (cd/m^2), range 256"),
    hdrvdp2_metric(),
    Metric('niqe', lambda p, t, dr: {'niqe': niqe_lib.niqe_float64(p, data_range=dr, quantize=True)},
           ('niqe',), needs_target=False, host=True,
           doc='NIQE (no reference) on rgb2gray, scored as the 8-bit image, in float64'),
)

METRICS: dict[str, Metric] = {m.name: m for m in _ENTRIES}

# Reported columns for which a lower value is better; every other column is better higher. HDR-VDP-2's
# Q (release 2.2.0, as computed here) is a pooled log of visible differences: lower is better; P_det
# and C_max measure how visible the differences are.
LOWER_IS_BETTER = frozenset({'mse', 'mse_8bit', 'niqe', 'hdrvdp2_pdet', 'hdrvdp2_cmax'})


def higher_is_better(column: str, *, hdrvdp_release: str = "2.2.2") -> bool:
  """Whether a larger value of the reported column `column` is better (tables mark each column's best).
  HDR-VDP-2's Q is 0-100, higher is better, from release 2.2.1 on; release 2.2.0's Q is a pooled log of
  visible differences, lower is better (its Q_MOS, higher is better, is the 0-100 score)."""
  if column == 'hdrvdp2_q':
    return hdrvdp_release != "2.2.0"
  return column not in LOWER_IS_BETTER


def resolve(names: str | Iterable[str]) -> list[Metric]:
  """Metrics for comma-separated or listed names; an unknown name raises with the known ones."""
  if isinstance(names, str):
    names = [n for n in (s.strip() for s in names.split(',')) if n]
  names = list(names)
  unknown = [n for n in names if n not in METRICS]
  if unknown:
    raise KeyError(f'unknown metric(s) {unknown}; known: {sorted(METRICS)}')
  if not names:
    raise ValueError('no metric named')
  return [METRICS[n] for n in names]


def compute(
    names: str | Iterable[str],
    pred: chex.Array,
    target: chex.Array | None = None,
    *,
    data_range: float = 1.0,
) -> dict[str, chex.Array]:
  """Computes the named metrics on a batch; returns ``{column: [N] array}`` in the given order.

  Example: ``compute('psnr,ssim', pred, target)`` gives ``{'psnr': ..., 'ssim': ...}``.
  """
  out: dict[str, chex.Array] = {}
  for metric in resolve(names):
    out.update(metric(pred, target, data_range=data_range))
  return out


def means(values: Mapping[str, chex.Array]) -> dict[str, float]:
  """Batch means of :func:`compute`'s output, as Python floats (for logging)."""
  return {k: float(jnp.mean(v)) for k, v in values.items()}

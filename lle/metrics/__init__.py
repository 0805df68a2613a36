"""Image quality metrics: pure, jittable, batched functions on NHWC float arrays.

Every function returns one value per image (shape ``[N]``, or a named tuple of such arrays) and
documents its definition, source and conventions. ``METRICS`` maps the scorer's metric names to
callables returning ``{column: [N] array}``; ``compute(names, pred, target)`` evaluates several.
See ``lle/metrics/README.md`` for the table of metrics.
"""

from lle.metrics._prep import quantize_8bit, rgb_to_y
from lle.metrics.fidelity import ms_ssim, ms_ssim_dped, mse, psnr, ssim
from lle.metrics.feature_similarity import FSITMResult, fsitm
from lle.metrics.hdr import exposure_8bit, mpsnr, mpsnr_hdrtoolbox
from lle.metrics.naturalness import niqe
from lle.metrics.pu21 import pu21_encode, pu_psnr, pu_ssim
from lle.metrics.registry import METRICS, Metric, compute, hdrvdp2_metric, higher_is_better, means, resolve
from lle.metrics.tonemap_quality import TMQIResult, tmqi

__all__ = [
    'FSITMResult',
    'METRICS',
    'Metric',
    'TMQIResult',
    'compute',
    'exposure_8bit',
    'fsitm',
    'hdrvdp2_metric',
    'higher_is_better',
    'means',
    'mpsnr',
    'mpsnr_hdrtoolbox',
    'ms_ssim',
    'ms_ssim_dped',
    'mse',
    'niqe',
    'psnr',
    'pu21_encode',
    'pu_psnr',
    'pu_ssim',
    'quantize_8bit',
    'resolve',
    'rgb_to_y',
    'ssim',
    'tmqi',
]

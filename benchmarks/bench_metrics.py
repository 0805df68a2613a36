"""Throughput of every metric in lle.metrics, beside scikit-image where it has the same metric.

    python benchmarks/bench_metrics.py [--batch 16] [--size 512] [--repeats 3] [--metrics psnr,ssim]

Inputs are a batch of real photos (scikit-image's astronaut, chelsea, coffee, ... resized to
SIZE x SIZE) and a noisy copy; HDR metrics get an inverse-gamma, gain-boosted version (cd/m^2 scale),
FSITM and TMQI score the photo as the tone mapping of that HDR. Prints a Markdown table: compile time
of the first call and images/s of the jitted call (best of REPEATS), and scikit-image's images/s
(a Python loop over the batch, float64 as it computes).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from skimage import data, metrics as skm, transform

from lle import metrics

_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry', 'retina')


def make_batch(batch: int, size: int):
  rng = np.random.default_rng(0)
  photos = []
  for i in range(batch):
    img = getattr(data, _PHOTOS[i % len(_PHOTOS)])()[..., :3]
    photos.append(transform.resize(img, (size, size), anti_aliasing=True))
  target = np.stack(photos).astype(np.float32)
  pred = np.clip(target + rng.normal(0, 0.03, target.shape), 0, 1).astype(np.float32)
  gain = np.exp2(np.linspace(-2, 6, size, dtype=np.float32))[None, None, :, None]
  hdr_t = (target**2.2 * gain * 50 + 0.01).astype(np.float32)
  hdr_p = (hdr_t * np.exp(rng.normal(0, 0.05, hdr_t.shape))).astype(np.float32)
  return pred, target, hdr_p, hdr_t


def _sk_ssim(p, t):
  return skm.structural_similarity(t, p, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, channel_axis=-1, data_range=1.0)


SKIMAGE = {
    'mse': lambda p, t: skm.mean_squared_error(t, p),
    'psnr': lambda p, t: skm.peak_signal_noise_ratio(t, p, data_range=1.0),
    'ssim': _sk_ssim,
}


def _inputs(metric, pred, target, hdr_p, hdr_t):
  if metric.hdr_pred:
    return hdr_p, hdr_t
  if metric.hdr_target:
    return target, hdr_t  # the photo plays the tone-mapped image of the HDR target
  return pred, target


def _block(values):
  for v in values.values():
    v.block_until_ready()


def bench(names, batch, size, repeats):
  pred, target, hdr_p, hdr_t = make_batch(batch, size)
  rows = []
  for metric in metrics.resolve(names):
    p, t = _inputs(metric, pred, target, hdr_p, hdr_t)
    t0 = time.perf_counter()
    _block(metric(p, t))
    compile_s = time.perf_counter() - t0
    best = float('inf')
    for _ in range(repeats):
      t0 = time.perf_counter()
      _block(metric(p, t))
      best = min(best, time.perf_counter() - t0)
    sk = ''
    if metric.name in SKIMAGE:
      fn = SKIMAGE[metric.name]
      t0 = time.perf_counter()
      for i in range(batch):
        fn(p[i], t[i])
      sk = f'{batch / (time.perf_counter() - t0):.1f}'
    rows.append((metric.name, compile_s, batch / best, sk))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--size', type=int, default=512)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--metrics', default=','.join(metrics.METRICS))
  args = parser.parse_args()
  rows = bench(args.metrics, args.batch, args.size, args.repeats)
  print(f'\nbatch {args.batch} x {args.size}x{args.size}x3, float32, {jax.devices()[0].device_kind}, '
        f'{jax.device_count()} device(s)\n')
  print('| metric | compile + first call (s) | lle images/s | scikit-image images/s |')
  print('|---|---:|---:|---:|')
  for name, compile_s, ips, sk in rows:
    print(f'| {name} | {compile_s:.2f} | {ips:.1f} | {sk or "-"} |')


if __name__ == '__main__':
  main()

"""Scores a folder of results against a folder of references.

    python -m lle.metrics.score --pred DIR [--target DIR] --metrics psnr,ssim,niqe --out DIR

Files are paired by name stem (``0001.png`` with ``0001.tif``). Every file must have a partner of
the same size, otherwise nothing is scored and the error names the files. Same-sized pairs are
scored in batches (one compilation per image size and metric). Writes ``OUT/metrics.csv`` (a
``file`` column, then one column per reported value) and ``OUT/summary.json`` (means over images).
Metric names and conventions: ``lle/metrics/registry.py`` and ``lle/metrics/README.md``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import math
import os
import pathlib
import sys
import tempfile
from collections.abc import Sequence

import jax
import numpy as np

from lle.metrics import hdrvdp
from lle.metrics import image_io
from lle.metrics import registry

LDR_PEAK = 255.0  # integer files are read onto the 0-255 scale (image_io)


class ScoreError(ValueError):
  """A problem with the inputs; the message names the files."""


def pair_files(pred_dir, target_dir) -> list[tuple[str, pathlib.Path, pathlib.Path | None]]:
  """``(stem, pred, target)`` for every pred file; raises naming every file without a partner."""
  preds = image_io.list_images(pred_dir)
  if not preds:
    raise ScoreError(f'{pred_dir}: no image files ({", ".join(image_io.SUFFIXES)})')
  if target_dir is None:
    return [(stem, path, None) for stem, path in preds.items()]
  targets = image_io.list_images(target_dir)
  lonely = [f'prediction {preds[s]} has no target' for s in preds if s not in targets]
  lonely += [f'target {targets[s]} has no prediction' for s in targets if s not in preds]
  if lonely:
    raise ScoreError('files without a partner (pairs match by name stem):\n  ' + '\n  '.join(lonely))
  return [(stem, path, targets[stem]) for stem, path in preds.items()]


def _load_pairs(pairs):
  """Reads every pair and checks sizes before any metric runs."""
  loaded, bad = [], []
  for stem, pred_path, target_path in pairs:
    pred = image_io.read_image(pred_path)
    target = image_io.read_image(target_path) if target_path is not None else None
    if target is not None and pred.pixels.shape != target.pixels.shape:
      bad.append(f'{pred_path} is {_shape(pred.pixels)} but {target_path} is {_shape(target.pixels)}')
    loaded.append((stem, pred, target))
  if bad:
    raise ScoreError('image pairs of different size:\n  ' + '\n  '.join(bad))
  return loaded


def _shape(pixels):
  h, w, c = pixels.shape
  return f'{w}x{h} with {c} channel{"s" if c > 1 else ""}'


def _data_range(metric, pred, target):
  """Peak of the display-referred side(s): 255 for integer files, 1 for float files."""
  use_target = target is not None and metric.needs_target and not metric.hdr_target
  ldr_sides = ([] if metric.hdr_pred else [pred]) + ([target] if use_target else [])
  kinds = {img.hdr for img in ldr_sides}
  if len(kinds) > 1:
    raise ScoreError(f'{metric.name}: {pred.path.name} and {target.path.name} mix an integer image '
                     'with a float one; their scales differ')
  return 1.0 if kinds == {True} else LDR_PEAK


def _batches(items, size):
  for start in range(0, len(items), size):
    yield items[start:start + size]


def default_batch_size() -> int:
  """Images per jitted call: 1 on CPU (measured fastest there: the working set stays in cache),
  16 on accelerators."""
  return 1 if jax.default_backend() == 'cpu' else 16


def score(pred_dir, target_dir, metric_names, *, batch_size: int | None = None,
          hdrvdp_release: str = hdrvdp.DEFAULT_RELEASE):
  """Scores the folders; returns ``(rows, columns)`` with one dict per pred file, in name order.
  ``hdrvdp2`` is scored as HDR-VDP release ``hdrvdp_release``."""
  metrics = [registry.hdrvdp2_metric(hdrvdp_release) if m.name == 'hdrvdp2' else m
             for m in registry.resolve(metric_names)]
  if target_dir is None and any(m.needs_target for m in metrics):
    need = [m.name for m in metrics if m.needs_target]
    raise ScoreError(f'metrics {need} compare with a reference: pass --target')
  batch_size = batch_size or default_batch_size()
  loaded = _load_pairs(pair_files(pred_dir, target_dir))
  columns = [c for m in metrics for c in m.columns]
  rows = {stem: {'file': pred.path.name} for stem, pred, _ in loaded}

  for metric in metrics:
    groups = collections.defaultdict(list)
    for stem, pred, target in loaded:
      key = (pred.pixels.shape, _data_range(metric, pred, target))
      groups[key].append((stem, pred, target))
    for (_, data_range), items in groups.items():
      size = min(batch_size, len(items))
      for chunk in _batches(items, size):
        # Pad the last batch to the group's batch size so that each size compiles once.
        padded = chunk + [chunk[-1]] * (size - len(chunk))
        pred = np.stack([p.pixels for _, p, _ in padded])
        target = (np.stack([t.pixels for _, _, t in padded])
                  if metric.needs_target else None)
        try:
          values = metric(pred, target, data_range=data_range)
        except ValueError as err:  # e.g. an image too small for the metric's windows
          names = ', '.join(p.path.name for _, p, _ in chunk)
          raise ScoreError(f'{metric.name} cannot score {names}: {err}') from err
        for col, vals in values.items():
          vals = np.asarray(vals, np.float64)
          for i, (stem, _, _) in enumerate(chunk):
            rows[stem][col] = float(vals[i])
  return [rows[stem] for stem, _, _ in loaded], columns


def undefined_notes(rows) -> list[str]:
  """Lines naming the files whose scores are NaN because the metric is not defined at their size."""
  small = [r['file'] for r in rows if 'tmqi_s' in r and math.isnan(r['tmqi_s'])]
  if not small:
    return []
  return [f'tmqi_s and tmqi_q are NaN for {len(small)} image(s) under 161 pixels a side (TMQI.m\'s '
          f'five-scale structural fidelity is undefined there; tmqi_n is scored): {", ".join(small)}']


def summarise(rows, columns) -> dict[str, float]:
  """Mean of every column over the images (a NaN entry makes its mean NaN; inf stays inf)."""
  return {col: float(np.mean([r[col] for r in rows])) for col in columns}


def _json_number(x: float) -> float | str:
  # Strict JSON has no inf/NaN (identical images give PSNR = inf): write them as strings.
  return x if math.isfinite(x) else str(x)


def _atomic_write(path: pathlib.Path, text: str) -> None:
  # Write next to the destination and rename, so an interrupted run leaves no half-written file.
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
  try:
    with os.fdopen(fd, 'w', newline='') as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def write_results(out_dir, rows, columns, *, metadata: dict) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes ``metrics.csv`` and ``summary.json`` into ``out_dir``; returns their paths."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  lines = [','.join(['file'] + columns)]
  for row in rows:
    lines.append(','.join([_csv_field(row['file'])] + [repr(row[c]) for c in columns]))
  csv_path, json_path = out_dir / 'metrics.csv', out_dir / 'summary.json'
  _atomic_write(csv_path, '\n'.join(lines) + '\n')
  means = {k: _json_number(v) for k, v in summarise(rows, columns).items()}
  summary = dict(metadata, n_images=len(rows), mean=means)
  _atomic_write(json_path, json.dumps(summary, indent=2, allow_nan=False) + '\n')
  return csv_path, json_path


def _csv_field(text: str) -> str:
  buf = io.StringIO()
  csv.writer(buf).writerow([text])  # quotes names with commas or quotes
  return buf.getvalue().rstrip('\r\n')


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m lle.metrics.score', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pred', required=True, help='folder of results to score')
  parser.add_argument('--target', help='folder of references (not needed for niqe alone)')
  parser.add_argument('--metrics', required=True,
                      help=f'comma-separated names from: {", ".join(registry.METRICS)}')
  parser.add_argument('--out', required=True, help='folder for metrics.csv and summary.json')
  parser.add_argument('--batch-size', type=int, default=None,
                      help='images per jitted call (default: 1 on CPU, 16 on GPU/TPU)')
  parser.add_argument('--hdrvdp-release', choices=tuple(hdrvdp.RELEASES), default=hdrvdp.DEFAULT_RELEASE,
                      help='HDR-VDP-2 release of hdrvdp2 (2.2.0 adds hdrvdp2_qmos)')
  args = parser.parse_args(argv)
  try:
    rows, columns = score(args.pred, args.target, args.metrics, batch_size=args.batch_size,
                          hdrvdp_release=args.hdrvdp_release)
  except (ScoreError, KeyError, ValueError) as err:
    print(f'error: {err.args[0] if err.args else err}', file=sys.stderr)
    return 2
  metadata = {'pred': str(args.pred), 'target': args.target, 'metrics': args.metrics.split(',')}
  if 'hdrvdp2' in [m.strip() for m in metadata['metrics']]:
    metadata['hdrvdp_release'] = args.hdrvdp_release
  csv_path, json_path = write_results(args.out, rows, columns, metadata=metadata)
  summary = summarise(rows, columns)
  print(f'{len(rows)} images -> {csv_path}, {json_path}')
  for note in undefined_notes(rows):
    print(f'note: {note}', file=sys.stderr)
  for col, value in summary.items():
    print(f'  {col}: {value}')
  return 0


if __name__ == '__main__':
  sys.exit(main())

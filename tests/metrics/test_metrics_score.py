"""The registry and the folder scorer, on folders the tests write."""

import csv
import json

import cv2
import numpy as np
import pytest

from lle import metrics
from lle.metrics import image_io
from lle.metrics import score


def test_registry_names_and_columns():
  assert set(metrics.METRICS) == {
      'mse', 'mse_8bit', 'psnr', 'psnr_y', 'ssim', 'ssim_y', 'ssim_matlab', 'ms_ssim', 'fsitm', 'tmqi', 'mpsnr',
      'mpsnr_hdrtoolbox', 'pu_psnr', 'pu_ssim', 'niqe', 'hdrvdp2', 'psnr_l', 'ms_ssim_dped'}
  assert metrics.METRICS['fsitm'].columns == ('fsitm_r', 'fsitm_g', 'fsitm_b', 'fsitm')
  # mse_8bit: Montulet & Briassouli's MSE on the 0-255 scale; one pixel off by 1/255 in one of 3 channels
  pred, target = np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32)
  pred[0, 0, 0, 0] = 1 / 255
  np.testing.assert_allclose(metrics.METRICS['mse_8bit'](pred, target)['mse_8bit'], [1 / 12], rtol=1e-5)
  assert metrics.METRICS['tmqi'].columns == ('tmqi_q', 'tmqi_s', 'tmqi_n')
  assert not metrics.METRICS['niqe'].needs_target
  with pytest.raises(KeyError, match='psnrr'):
    metrics.resolve('psnr,psnrr')


def test_compute_matches_direct_calls(photos, distorted):
  pred, target = np.float32(distorted), np.float32(photos)
  out = metrics.compute('psnr,ssim_y,mse', pred, target)
  assert list(out) == ['psnr', 'ssim_y', 'mse']
  np.testing.assert_array_equal(out['psnr'], metrics.psnr(pred, target))
  np.testing.assert_array_equal(out['ssim_y'], metrics.ssim(pred, target, y_channel=True))
  means = metrics.means(out)
  assert means['psnr'] == pytest.approx(float(np.mean(metrics.psnr(pred, target))))


@pytest.fixture
def ldr_folders(tmp_path, photos, distorted):
  """pred/ and target/ with an 8-bit PNG pair, a 16-bit TIFF pair, a gray PNG pair and a JPEG pair."""
  pred_dir, target_dir = tmp_path / 'pred', tmp_path / 'target'
  pred_dir.mkdir()
  target_dir.mkdir()
  p8, t8 = np.uint8(np.round(distorted * 255)), np.uint8(np.round(photos * 255))
  bgr = lambda x: np.ascontiguousarray(x[..., ::-1])
  cv2.imwrite(str(pred_dir / 'a.png'), bgr(p8[0]))
  cv2.imwrite(str(target_dir / 'a.png'), bgr(t8[0]))
  cv2.imwrite(str(pred_dir / 'b.tif'), bgr(np.uint16(p8[1]) * 257))  # 16 bit, same values
  cv2.imwrite(str(target_dir / 'b.png'), bgr(t8[1]))
  cv2.imwrite(str(pred_dir / 'c.png'), p8[2, ..., 1])  # gray
  cv2.imwrite(str(target_dir / 'c.png'), t8[2, ..., 1])
  cv2.imwrite(str(pred_dir / 'd.jpg'), bgr(p8[2]), [cv2.IMWRITE_JPEG_QUALITY, 90])
  cv2.imwrite(str(target_dir / 'd.png'), bgr(t8[2]))
  return pred_dir, target_dir, p8, t8


def test_read_image_kinds(ldr_folders):
  pred_dir, _, p8, _ = ldr_folders
  a = image_io.read_image(pred_dir / 'a.png')
  b = image_io.read_image(pred_dir / 'b.tif')
  c = image_io.read_image(pred_dir / 'c.png')
  np.testing.assert_array_equal(a.pixels, p8[0])  # RGB order, 0-255
  np.testing.assert_allclose(b.pixels, p8[1], atol=1e-4)  # 16 bit mapped onto 0-255
  assert c.pixels.shape == p8.shape[1:3] + (1,) and not c.hdr


def test_scorer_writes_csv_and_summary(ldr_folders, tmp_path):
  pred_dir, target_dir, p8, t8 = ldr_folders
  out = tmp_path / 'out'
  rc = score.main(['--pred', str(pred_dir), '--target', str(target_dir),
                   '--metrics', 'psnr,ssim,mse', '--out', str(out)])
  assert rc == 0
  with open(out / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  assert [r['file'] for r in rows] == ['a.png', 'b.tif', 'c.png', 'd.jpg']
  assert list(rows[0]) == ['file', 'psnr', 'ssim', 'mse']
  # Values equal direct calls on the 0-255 scale (8-bit conventions).
  want_a = metrics.psnr(np.float32(p8[:1]), np.float32(t8[:1]), data_range=255.0)
  assert float(rows[0]['psnr']) == pytest.approx(float(want_a[0]), rel=1e-6)
  want_c = metrics.ssim(np.float32(p8[2:3, ..., 1:2]), np.float32(t8[2:3, ..., 1:2]), data_range=255.0)
  assert float(rows[2]['ssim']) == pytest.approx(float(want_c[0]), rel=1e-6)
  assert float(rows[1]['mse']) == pytest.approx(float(np.mean((np.float64(p8[1]) - t8[1]) ** 2)), rel=1e-4)
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['n_images'] == 4
  assert summary['mean']['mse'] == pytest.approx(np.mean([float(r['mse']) for r in rows]))


def test_scorer_names_missing_partner(ldr_folders, tmp_path, capsys):
  pred_dir, target_dir, _, _ = ldr_folders
  (target_dir / 'c.png').unlink()
  cv2.imwrite(str(target_dir / 'zz.png'), np.zeros((8, 8), np.uint8))
  rc = score.main(['--pred', str(pred_dir), '--target', str(target_dir), '--metrics', 'psnr',
                   '--out', str(tmp_path / 'out')])
  err = capsys.readouterr().err
  assert rc == 2
  assert 'c.png has no target' in err and 'zz.png has no prediction' in err
  assert not (tmp_path / 'out').exists()  # nothing half-written


def test_scorer_names_size_mismatch(ldr_folders, tmp_path):
  pred_dir, target_dir, _, t8 = ldr_folders
  cv2.imwrite(str(target_dir / 'a.png'), t8[0, :50, :60, ::-1].copy())
  with pytest.raises(score.ScoreError, match=r'a\.png is 120x96 with 3 channels but .*a\.png is 60x50'):
    score.score(pred_dir, target_dir, 'ssim')


def test_scorer_hdr_and_no_reference(tmp_path, tonemap_pairs):
  ldr, hdr = tonemap_pairs
  hdr_dir, tm_dir = tmp_path / 'hdr', tmp_path / 'tm'
  hdr_dir.mkdir()
  tm_dir.mkdir()
  for i in range(2):
    cv2.imwrite(str(hdr_dir / f'{i}.hdr'), np.float32(hdr[i, ..., ::-1]))
    np.save(tm_dir / f'{i}.npy', np.float32(hdr[i] * 1.1))  # an HDR "prediction"
    cv2.imwrite(str(tmp_path / f'{i}.png'), np.uint8(np.clip(np.round(ldr[i]), 0, 255))[..., ::-1])
  rows, cols = score.score(tm_dir, hdr_dir, 'mpsnr')
  # Radiance files hold 8-bit mantissas: compare with what OpenCV reads back.
  back = np.stack([image_io.read_image(hdr_dir / f'{i}.hdr').pixels for i in range(2)])
  np.testing.assert_allclose([r['mpsnr'] for r in rows],
                             metrics.mpsnr(np.float32(hdr[:2] * 1.1), back), rtol=1e-6)
  assert cols == ['mpsnr']
  ldr_dir = tmp_path / 'ldr'
  ldr_dir.mkdir()
  for i in range(2):
    (tmp_path / f'{i}.png').rename(ldr_dir / f'{i}.png')
  rows, cols = score.score(ldr_dir, hdr_dir, 'fsitm,niqe', batch_size=2)
  assert cols == ['fsitm_r', 'fsitm_g', 'fsitm_b', 'fsitm', 'niqe']
  ldr8 = np.stack([image_io.read_image(ldr_dir / f'{i}.png').pixels for i in range(2)])
  want = metrics.fsitm(ldr8, back, data_range=255.0)
  np.testing.assert_allclose([r['fsitm'] for r in rows], want.mean, atol=1e-7)
  # NIQE alone needs no target folder. 176x184 holds a single 96x96 block, whose feature covariance
  # is undefined (n - 1 = 0): NaN, as in MATLAB.
  rows, _ = score.score(ldr_dir, None, 'niqe')
  assert [r['file'] for r in rows] == ['0.png', '1.png'] and all(np.isnan(r['niqe']) for r in rows)
  with pytest.raises(score.ScoreError, match='--target'):
    score.score(ldr_dir, None, 'niqe,psnr')
  # 100x120 is too small for five MS-SSIM scales: the error names the file.
  small = tmp_path / 'small'
  small.mkdir()
  cv2.imwrite(str(small / 'tiny.png'), np.zeros((100, 120), np.uint8))
  with pytest.raises(score.ScoreError, match=r'ms_ssim cannot score tiny\.png.*176'):
    score.score(small, small, 'ms_ssim')


def test_scorer_hdrvdp_release(tmp_path):
  rng = np.random.default_rng(0)
  pred_dir, target_dir = tmp_path / 'pred', tmp_path / 'target'
  pred_dir.mkdir()
  target_dir.mkdir()
  target = np.float32(10 ** rng.uniform(1, 2.5, (24, 24, 3)))  # cd/m^2
  np.save(target_dir / 'a.npy', target)
  np.save(pred_dir / 'a.npy', np.float32(target * rng.uniform(0.95, 1.05, target.shape)))
  out = {}
  for release in ('2.2.2', '2.2.0'):
    assert score.main(['--pred', str(pred_dir), '--target', str(target_dir), '--metrics', 'hdrvdp2',
                       '--hdrvdp-release', release, '--out', str(tmp_path / release)]) == 0
    with open(tmp_path / release / 'metrics.csv') as f:
      out[release] = next(csv.DictReader(f))
    assert json.loads((tmp_path / release / 'summary.json').read_text())['hdrvdp_release'] == release
  new, old = out['2.2.2'], out['2.2.0']
  assert list(new) == ['file', 'hdrvdp2_q', 'hdrvdp2_pdet', 'hdrvdp2_cmax']
  assert list(old) == ['file', 'hdrvdp2_q', 'hdrvdp2_qmos', 'hdrvdp2_pdet', 'hdrvdp2_cmax']
  assert new['hdrvdp2_pdet'] == old['hdrvdp2_pdet']  # the same in both releases
  assert 0 < float(new['hdrvdp2_q']) < 100 and float(old['hdrvdp2_q']) < 0  # 0-100 vs a log score


def test_tmqi_of_a_small_image_scores_naturalness_and_says_why_the_rest_is_nan(tmp_path, capsys, photos):
  pred_dir, target_dir = tmp_path / 'pred', tmp_path / 'target'
  pred_dir.mkdir()
  target_dir.mkdir()
  ldr = np.uint8(np.round(photos[0, :120, :150] * 255))  # under 161 pixels a side
  cv2.imwrite(str(pred_dir / 'small.png'), ldr[..., ::-1])
  np.save(target_dir / 'small.npy', np.float32(photos[0, :120, :150] ** 2.2 * 50 + 0.01))
  assert score.main(['--pred', str(pred_dir), '--target', str(target_dir), '--metrics', 'tmqi',
                     '--out', str(tmp_path / 'out')]) == 0
  row = next(csv.DictReader(open(tmp_path / 'out' / 'metrics.csv')))
  assert row['tmqi_s'] == 'nan' and row['tmqi_q'] == 'nan' and 0 < float(row['tmqi_n']) <= 1
  err = capsys.readouterr().err
  assert 'under 161 pixels a side' in err and 'small.png' in err

"""DPED's scoring (aiff22/DPED train_model.py): PSNR of the MSE pooled over each batch of held-out patches,
in file order, on the unclipped output, and ssim.py's MS-SSIM of each whole batch, averaged over batches;
beside the paper's per-image scores. Written into results.json under "conventions"."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from lle import evaluate
from lle.methods import Method
from tests.conftest import load_config
from tests.metrics.test_ms_ssim_dped import _multiscale_ssim


def _method():
  """A 'network' whose output leaves [0, 1] (DPED's tanh * 0.58 + 0.5 spans [-0.08, 1.08])."""
  return Method(init=None, train_step=None, predict=lambda state, x: x * 1.3 - 0.1, networks=None,
                baselines={"identity": lambda x: x})


def _patches(n, size=24, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    target = rng.random((size, size, 3)).astype(np.float32)
    smooth = (0.5 * target + 0.5 * np.roll(target, 1, axis=0)).astype(np.float32)
    out.append({"input": np.clip(0.8 * smooth + 0.1, 0, 1).astype(np.float32), "target": smooth, "name": f"{i}.jpg"})
  return out


def _dped_scores(examples, batch_size, *, clip):
  """train_model.py's test loop: batches test_data[be:en] in index order (int(N / batch_size) of them),
  loss_mse = sum((dslr - enhanced)^2) / (PATCH_SIZE * batch_size), loss_psnr = 20 log10(1 / sqrt(loss_mse)),
  MultiScaleSSIM(dslr * 255, enhanced * 255), each averaged over the batches."""
  psnr, ms_ssim = 0.0, 0.0
  batches = len(examples) // batch_size
  for j in range(batches):
    group = examples[j * batch_size:(j + 1) * batch_size]
    dslr = np.stack([e["target"] for e in group]).astype(np.float64)
    enhanced = np.stack([e["input"] for e in group]).astype(np.float32) * np.float32(1.3) - np.float32(0.1)
    enhanced = np.clip(enhanced, 0, 1) if clip else enhanced
    mse = np.sum((dslr - enhanced) ** 2) / (dslr[0].size * batch_size)
    psnr += 20 * np.log10(1.0 / np.sqrt(mse)) / batches
    ms_ssim += _multiscale_ssim(dslr * 255, enhanced.astype(np.float64) * 255) / batches
  return psnr, ms_ssim


@pytest.fixture
def config():
  config = load_config("configs/iqe.py:tiny")
  with config.unlocked():
    config.eval.metrics = ("psnr", "ms_ssim_dped")
    config.eval.num_images_to_save = 0
    config.eval.psnr_pooling, config.eval.pooling_batch_size, config.eval.clip = "batch", 4, False
  return config


def test_batch_pooling_is_train_model_py_on_the_unclipped_output_in_file_order(config, tmp_path):
  examples = _patches(11)  # names 0.jpg..10.jpg: as strings 10.jpg would come third
  means, per_image, _ = evaluate.evaluate(_method(), None, examples, config)
  psnr, ms_ssim = _dped_scores(examples, 4, clip=False)  # batches 0-3 and 4-7; 8, 9, 10 left out
  assert means["model"]["psnr"] == pytest.approx(psnr, abs=1e-4)
  assert means["model"]["ms_ssim_dped"] == pytest.approx(ms_ssim, abs=2e-5)
  # Not the other readings: per-image means, string order, or the clipped output.
  assert abs(np.mean([s["psnr"] for s in per_image["model"].values()]) - psnr) > 1e-3
  shuffled = [examples[i] for i in (0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9)]
  assert abs(_dped_scores(shuffled, 4, clip=False)[0] - psnr) > 1e-3
  assert abs(_dped_scores(examples, 4, clip=True)[0] - psnr) > 1e-3
  results = evaluate.write_results(tmp_path, config=config, step=1, means=means, per_image=per_image,
                                   dataset={}, num_devices=1)
  saved = json.loads((tmp_path / "results.json").read_text())["conventions"]
  assert saved == results["conventions"]
  assert (saved["psnr_pooling"], saved["pooling_batch_size"], saved["clip"]) == ("batch", 4, False)


def test_image_pooling_and_clipping_are_the_paper_reading(config):
  examples = _patches(5)
  with config.unlocked():
    config.eval.psnr_pooling, config.eval.clip = "image", True
  means, per_image, _ = evaluate.evaluate(_method(), None, examples, config)
  outputs = [np.clip(e["input"] * np.float32(1.3) - np.float32(0.1), 0, 1) for e in examples]
  want = np.mean([10 * np.log10(1 / np.mean((o.astype(np.float64) - e["target"]) ** 2))
                  for o, e in zip(outputs, examples)])
  assert means["model"]["psnr"] == pytest.approx(want, abs=1e-4)
  assert "pooling_batch_size" not in evaluate.conventions(config)


def test_too_few_images_for_one_batch_and_bad_values_are_refused(config):
  with config.unlocked():
    config.eval.psnr_pooling, config.eval.clip = "batch", False
    config.eval.pooling_batch_size = 50
  with pytest.raises(ValueError, match="pooling_batch_size=50 images, and the split has only 3"):
    evaluate.evaluate(_method(), None, _patches(3), config)
  with config.unlocked():
    config.eval.quantize_8bit = True
  with pytest.raises(ValueError, match="clip=False contradicts"):
    evaluate.conventions(config)
  with config.unlocked():
    config.eval.quantize_8bit, config.eval.psnr_pooling = False, "patch"
  with pytest.raises(ValueError, match=r"psnr_pooling='patch'; expected one of \('image', 'batch'\)"):
    evaluate.conventions(config)

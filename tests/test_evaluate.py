"""Streaming evaluation: same-shape batches, one compilation per image shape, scores equal to scoring
each image alone, bounded-memory windows for large images."""
import dataclasses

import numpy as np
import pytest

from lle import evaluate
from lle.data import pipeline
from tests.conftest import load_config
from tests.test_tiling import _photo, _random_state


def _split(sizes, seed=0):
  """An in-memory held-out split: {'low', 'high', 'name'} examples of the given (h, w) sizes."""
  rng = np.random.default_rng(seed)
  out = []
  for i, (h, w) in enumerate(sizes):
    high = _photo(h, w, seed=i)
    low = np.clip(high * rng.uniform(0.2, 0.5), 0, 255).astype(np.uint8)
    out.append({"low": low, "high": high, "name": f"img{i:02d}".encode()})
  return out


def _fresh(method):
  """The method with new function objects, so that jit's compilation counts start at zero (jit shares
  compilations between wrappers of one function, e.g. across tests in one process)."""
  predict = method.predict
  window = method.tiling.predict_window
  tiled = dataclasses.replace(method.tiling, predict_window=lambda *a: window(*a))
  return dataclasses.replace(method, predict=lambda s, x: predict(s, x), tiling=tiled,
                             baselines={k: f if getattr(f, "host", False) else (lambda f: lambda x: f(x))(f)
                                        for k, f in method.baselines.items()})


def test_twenty_images_of_three_sizes_compile_the_model_three_times():
  config = load_config("configs/gladnet.py:tiny")
  with config.unlocked():
    config.eval.batch_size = 4
    config.eval.num_images_to_save = 2
  method, state = _random_state(config)
  sizes = [(40, 56), (48, 48), (33, 70)] * 6 + [(40, 56), (48, 48)]  # interleaved: 7, 7 and 6 of each
  split = pipeline.EvalSet(_split(sizes), config.data)
  assert len(split) == 20 and split.names[0] == "img00"
  batches = list(split.batches(4))
  assert [len(b) for b in batches] == [4, 3, 4, 3, 4, 2]
  assert all(len({e["input"].shape for e in b}) == 1 for b in batches)
  evaluator = evaluate.Evaluator(_fresh(method), config)
  means, per_image, grids = evaluator(state, split)
  assert evaluator.predict._cache_size() == 3  # one per size (batches are filled up to 4)
  assert evaluator.baselines["identity"]._cache_size() == 3
  assert sorted(grids) == ["img00", "img01"]  # input | identity | model | target, under their labels
  assert grids["img00"].shape == (evaluate.LABEL_HEIGHT + 40, 4 * 56, 3)
  # Each image scored alone (batch 1, no fill-up) gives the same numbers.
  with config.unlocked():
    config.eval.batch_size = 1
  alone = evaluate.Evaluator(method, config)
  for i in (0, 5, 19):
    one = pipeline.EvalSet(_split(sizes)[i:i + 1], config.data)
    _, single, _ = alone(state, one)
    name = f"img{i:02d}"
    for system in ("model", "identity"):
      for metric, value in single[system][name].items():
        assert per_image[system][name][metric] == pytest.approx(value, rel=1e-5, abs=1e-5)
  assert means["model"]["psnr"] == pytest.approx(np.mean([s["psnr"] for s in per_image["model"].values()]))


def test_large_images_are_scored_window_by_window_with_the_one_pass_scores():
  config = load_config("configs/neid.py:tiny")
  with config.unlocked():
    config.eval.batch_size = 1
    config.eval.tile_size = None
  method, state = _random_state(config)
  split = pipeline.EvalSet(_split([(150, 230)]), config.data)
  _, one_pass, _ = evaluate.Evaluator(method, config)(state, split)
  with config.unlocked():
    config.eval.tile_size = 16  # NEID tiny: 16 + 2 x 12 < 75 x 115, the downsampled input
  evaluator = evaluate.Evaluator(_fresh(method), config)
  _, tiled, _ = evaluator(state, split)
  assert evaluator.predict._cache_size() == 0  # no one-pass call at this size
  assert evaluator.tiled._window._cache_size() == 1
  for metric, value in one_pass["model"]["img00"].items():
    assert tiled["model"]["img00"][metric] == pytest.approx(value, abs=1e-4)


def test_index_pass_reads_shapes_without_decoding(tmp_path):
  config = load_config("configs/gladnet.py:tiny")
  with config.unlocked():
    config.data.eval_limit = None
  split = pipeline.eval_set(config)
  assert split.names == sorted(split.names) and len(split) == 3
  skipped = pipeline._as_data_source(config.data, "test", decoders={"low": pipeline.tfds.decode.SkipDecoding()})
  assert isinstance(skipped[0]["low"], dict) and "shape" in skipped[0]["low"]  # shape without the pixels
  for entry, example in zip(split.entries, (split.load(e[0]) for e in split.entries)):
    assert entry[2] == example["input"].shape and entry[1] == example["name"]

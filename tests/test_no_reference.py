"""Evaluation without references: the `lowlight_nr` builder (LIME, DICM, NPE, MEF folders), folders of
photos, NIQE of the model and the baselines in results.json under "no_reference"."""
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle import evaluate, train
from lle.data import build, errors, pipeline
from lle.metrics import naturalness
from tests.data import fixtures
from tests.test_tiling import _photo, _random_state
from tests.conftest import load_config


def _lime(manual, n=3, sizes=((120, 200), (100, 210))):
  """manual/data/LIME/{0.bmp, 1.png, 2.png}: dark photos of two sizes (NIQE needs two 96x96 blocks)."""
  images = {}
  for i in range(n):
    h, w = sizes[i % len(sizes)]
    name = f"{i}.bmp" if i == 0 else f"{i}.png"
    images[name] = (_photo(h, w, seed=i) * 0.3).astype(np.uint8)
    fixtures.write(manual / "data" / "LIME" / name, images[name])
  return images


def test_builder_reads_the_set_folder_and_refuses_a_partial_or_bad_one(tmp_path):
  images = _lime(tmp_path / "manual")
  with pytest.raises(errors.LayoutError, match="found 3 of the 10 LIME images"):
    build.build("lowlight_nr/lime", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))
  build.build("lowlight_nr/lime", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  source = tfds.data_source("lowlight_nr/lime", split="test", data_dir=str(tmp_path / "tfds"))
  got = {source[i]["name"].decode(): source[i]["low"] for i in range(len(source))}
  assert sorted(got) == sorted(images)
  for name, image in images.items():
    np.testing.assert_array_equal(got[name], image)
  fixtures.truncate(tmp_path / "manual" / "data" / "LIME" / "1.png")
  with pytest.raises(errors.BadFileError, match="1.png"):
    build.build("lowlight_nr/lime", tmp_path / "manual", data_dir=str(tmp_path / "tfds2"), allow_subset=True)
  with pytest.raises(errors.LayoutError, match="no .* images in .*empty"):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    build.build("lowlight_nr/dicm", tmp_path / "empty", data_dir=str(tmp_path / "tfds3"))


def test_no_reference_scores_of_a_built_set_and_a_folder(tmp_path, monkeypatch):
  _lime(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  build.build("lowlight_nr/lime", tmp_path / "manual", data_dir=data_dir, allow_subset=True)
  photos = tmp_path / "mine"
  photos.mkdir()
  fixtures.write(photos / "street.jpg", _photo(110, 200, seed=7))
  config = load_config("configs/neid.py:tiny,nr")
  assert config.eval.no_reference == ("lowlight_nr/lime", "lowlight_nr/dicm", "lowlight_nr/npe")
  with config.unlocked():
    config.eval.no_reference = ("lowlight_nr/lime", f"folder:{photos}")
    config.data.data_dir = data_dir  # where the no-reference set was built (the demo set builds there too)
  method, state = _random_state(config)
  evaluator = evaluate.Evaluator(method, config)
  scores = evaluator.no_reference(state)
  assert sorted(scores) == ["lowlight_nr_lime", "mine"]
  lime = scores["lowlight_nr_lime"]
  assert lime["num_images"] == 3 and sorted(lime["per_image"]["model"]) == ["0.bmp", "1.png", "2.png"]
  # The identity baseline of NEID (the bicubic-upsampled input) has the input's NIQE: check one image.
  photo = pipeline.FolderSource(str(tmp_path / "manual" / "data" / "LIME"))[1]["low"]
  up = np.asarray(method.baselines["identity"](pipeline.bicubic_downsample(photo, 2)[None]))[:, :100, :210]
  want = float(naturalness.niqe(evaluate.quantize(np.clip(up, 0, 1), "round"), quantize=True)[0])  # NEID: 8-bit
  assert lime["per_image"]["identity"]["1.png"]["niqe"] == pytest.approx(want, rel=1e-4)
  assert lime["model"]["niqe"] == pytest.approx(np.mean([v["niqe"] for v in lime["per_image"]["model"].values()]))
  assert scores["mine"]["num_images"] == 1 and np.isfinite(scores["mine"]["model"]["niqe"])
  (tmp_path / "run").mkdir()
  results = evaluate.write_results(tmp_path / "run", config=config, step=1, means={"model": {}}, per_image={},
                                   dataset={}, num_devices=1, no_reference=scores)
  saved = json.loads((tmp_path / "run" / "results.json").read_text())
  assert saved["no_reference"]["mine"]["model"] == results["no_reference"]["mine"]["model"]


def test_a_set_that_is_not_built_stops_before_training_and_names_the_build_command(tmp_path):
  config = load_config("configs/gladnet.py:tiny,nr")
  with config.unlocked():
    config.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(FileNotFoundError, match="python -m lle.data.build lowlight_nr/lime"):
    train.train_and_evaluate(config, tmp_path / "run")
  with config.unlocked():
    config.eval.no_reference_metrics = ("psnr",)
  with pytest.raises(ValueError, match="no_reference_metrics has \\['psnr'\\]; metrics without a reference"):
    evaluate.no_reference_metric_fns(config)


def test_eval_mode_scores_a_folder_given_on_the_command_line(tmp_path):
  import subprocess
  import sys
  from tests.conftest import REPO
  from tests.test_enhance import _run
  _run("configs/gladnet.py:tiny", tmp_path)
  photos = tmp_path / "photos"
  fixtures.write(photos / "a.png", _photo(100, 200, seed=3))
  out = subprocess.run([sys.executable, "-m", "lle.main", "--mode=eval", "--config=configs/gladnet.py:tiny",
                        f"--workdir={tmp_path / 'run'}", f"--config.eval.no_reference=('folder:{photos}',)"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.loads((tmp_path / "run" / "results.json").read_text())
  assert results["step"] == 7 and results["conventions"]["quantize_rounding"] == "floor"
  assert set(results["no_reference"]["photos"]["per_image"]["model"]) == {"a.png"}
  assert np.isfinite(results["no_reference"]["photos"]["baselines"]["identity"]["niqe"])

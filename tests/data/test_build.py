import subprocess
import sys

import pytest

from lle.data import build
from tests.conftest import REPO
from tests.data import fixtures


def test_main_builds_and_prints_summary(tmp_path, capsys):
  fixtures.lol_v1(tmp_path / "manual")
  rc = build.main(["lol/v1", f"--manual_dir={tmp_path / 'manual'}", f"--data_dir={tmp_path / 'tfds'}",
                   "--allow_subset"])
  out = capsys.readouterr().out
  assert rc == 0
  assert "train: 3 examples" in out and "test: 2 examples" in out and "skipped 0 bad examples" in out
  # Built data is never rebuilt silently; --overwrite rebuilds it from the (now changed) files.
  (tmp_path / "manual" / "LOLdataset" / "our485" / "low" / "3.png").unlink()
  (tmp_path / "manual" / "LOLdataset" / "our485" / "high" / "3.png").unlink()
  args = ["lol/v1", f"--manual_dir={tmp_path / 'manual'}", f"--data_dir={tmp_path / 'tfds'}", "--allow_subset"]
  assert build.main(args) == 0
  out = capsys.readouterr().out
  assert "already built" in out and "train: 3 examples" in out
  assert build.main(args + ["--overwrite"]) == 0
  assert "train: 2 examples" in capsys.readouterr().out


def test_a_partial_build_says_so_and_is_not_already_built_for_a_stricter_build(tmp_path, capsys):
  fixtures.lol_v1(tmp_path / "manual")
  bad = tmp_path / "manual" / "LOLdataset" / "our485" / "low" / "2.png"
  fixtures.truncate(bad)
  args = ["lol/v1", f"--manual_dir={tmp_path / 'manual'}", f"--data_dir={tmp_path / 'tfds'}", "--allow_subset"]
  assert build.main(args + ["--skip_bad"]) == 0
  out = capsys.readouterr().out
  assert "train: 2 examples" in out
  partial = ("partial: built with --skip_bad, 1 bad example(s) left out; built with --allow_subset from a partial "
             "download (LOL v1 train pairs: 3 of 485; LOL v1 test pairs: 2 of 15)")
  assert partial in out
  import ml_collections

  from lle.data import pipeline
  data = ml_collections.ConfigDict({"name": "lol/v1", "data_dir": str(tmp_path / "tfds"), "eval_split": "test"})
  version = pipeline.dataset_version(ml_collections.ConfigDict({"data": data}))  # results.json says it too
  assert version["partial"] == partial[len("partial: "):]
  # The same partial build again: already built. Without --skip_bad: the copy lacks what it asks for.
  assert build.main(args + ["--skip_bad"]) == 0 and "already built" in capsys.readouterr().out
  fixtures.write(bad, fixtures.image(2))
  assert build.main(args) == 0
  out = capsys.readouterr().out
  assert "already built" not in out and "rebuilding lol/v1: the built copy is partial (built with --skip_bad" in out
  assert "train: 3 examples" in out and ("partial: built with --allow_subset from a partial download (LOL v1 train "
                                         "pairs: 3 of 485; LOL v1 test pairs: 2 of 15)") in out.splitlines()


@pytest.mark.parametrize("args,message", [
    (["lol/v1", "--manual_dir=/nonexistent/lol"], "is not a folder"),
    (["coco", "--manual_dir=."], "unknown data set 'coco'"),
    (["lol/v1", "--manual_dir=.", "--split_file=x.json"], "--split_file applies to mit_fivek only"),
    (["lol/v1", "--manual_dir=.", "--size=8"], "--size apply to hdr only"),
    (["mit_fivek/expert_c_montulet", "--manual_dir=.", "--split_file=x.json"], "needs a config expert_"),
])
def test_main_reports_errors_in_one_line(tmp_path, capsys, args, message):
  assert build.main(args + [f"--data_dir={tmp_path}"]) == 1
  assert message in capsys.readouterr().err


def test_command_line_build_reads_back_in_a_fresh_process(tmp_path):
  expected = fixtures.lol_v1(tmp_path / "manual", train=2, test=1)
  data_dir = tmp_path / "tfds"
  run = subprocess.run([sys.executable, "-m", "lle.data.build", "lol/v1", f"--manual_dir={tmp_path / 'manual'}",
                        f"--data_dir={data_dir}", "--allow_subset"], cwd=REPO, capture_output=True, text=True)
  assert run.returncode == 0, run.stderr
  assert "train: 2 examples" in run.stdout
  # Reading needs only TFDS (the data set's files describe it), not the builder code.
  code = ("import tensorflow_datasets as tfds, numpy as np, sys; "
          f"s = tfds.data_source('lol/v1', split='test', data_dir={str(data_dir)!r}); "
          "print(len(s), s[0]['name'].decode(), s[0]['low'].dtype, s[0]['low'].shape)")
  read = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert read.returncode == 0, read.stderr
  assert read.stdout.split()[:3] == ["1", "100.png", "uint8"]
  assert list(expected["test"]) == ["100.png"]


def test_pipeline_reads_built_data_sets(tmp_path):
  import ml_collections
  import numpy as np

  from lle.data import pipeline
  expected = fixtures.lol_v1(tmp_path / "manual")
  build.build("lol/v1", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), allow_subset=True)
  data = ml_collections.ConfigDict({"name": "lol/v1", "data_dir": str(tmp_path / "tfds"), "input_feature": "low",
                                    "target_feature": "high", "target_encoding": "none"})
  source, info = pipeline.load_source(data, "test")
  assert info.name == "lol" and info.config_name == "v1" and len(source) == 2
  pair = pipeline.make_pair(source[0], data)
  low, high = expected["test"][source[0]["name"].decode()]
  np.testing.assert_allclose(pair["input"], low / 255.0, atol=1e-7)
  np.testing.assert_allclose(pair["target"], high / 255.0, atol=1e-7)

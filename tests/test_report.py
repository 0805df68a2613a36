"""Tables: cells are means over seeds of one data set and scale, columns select on the variant tags every
config writes (`variants`, `scale`), and published values stand only beside runs on the paper's data."""
import json

import pytest

from lle import report
from tests.conftest import load_config


def _run(root, name, config, model, baselines=None):
  d = root / name
  d.mkdir(parents=True)
  (d / "results.json").write_text(json.dumps({"config": config, "model": model, "step": 1,
                                              "baselines": baselines or {}}))


def _itmn(alpha, lam, seed, variant="full", scale="full", data="hdr/reinhard"):
  return {"method": "itmn", "seed": seed, "variants": [variant] + ([scale] if scale != "full" else []),
          "scale": scale, "data": {"name": data, "eval_split": "test"},
          "loss": {"alpha": alpha, "lam": lam, "adversarial": variant != "noadvreg"}}


def _spec_runs(specs):
  """(config spec, model scores[, baselines]) -> runs as load_runs gives them, from the real configs."""
  return [{"dir": f"r{i}", "config": load_config(spec).to_dict(), "model": model,
           "baselines": rest[0] if rest else {}} for i, (spec, model, *rest) in enumerate(specs)]


def test_config_tags_name_the_default_model_and_the_scale():
  assert load_config("configs/iqe.py").variants == ("code",) and load_config("configs/iqe.py").scale == "full"
  c = load_config("configs/iqe.py:paper,demo")
  assert (c.variants, c.scale) == (("paper", "demo"), "demo")
  assert load_config("configs/neid.py:tiny").variants == ("le_dr_ff", "tiny")
  assert load_config("configs/itmn.py:nodmse").variants == ("nodmse",)
  assert load_config("configs/tmgan.py:demo").variants == ("paper", "demo")  # Table 1's "proposed network"
  assert load_config("configs/tmgan.py:down8").variants == ("down8",)
  with pytest.raises(ValueError, match="each choose the model"):
    load_config("configs/iqe.py:paper,release")
  with pytest.raises(ValueError, match="each set the run's size"):
    load_config("configs/iqe.py:demo,tiny")


def test_itmn_table2_means_stds_missing_cells_and_never_mixes_scales(tmp_path):
  _run(tmp_path, "a", _itmn(1e5, 1e4, 0), {"mpsnr": 20.0, "ssim": 0.8, "psnr": 25.0})
  _run(tmp_path, "b", _itmn(1e5, 1e4, 1), {"mpsnr": 22.0, "ssim": 0.9, "psnr": 27.0})
  _run(tmp_path, "c", _itmn(1e3, 1e4, 0), {"mpsnr": 18.0, "ssim": 0.7, "psnr": 23.0})
  _run(tmp_path, "d", _itmn(1e5, 1e4, 2, variant="noadvreg"), {"mpsnr": 99.0, "ssim": 0.1, "psnr": 1.0})
  _run(tmp_path, "e", _itmn(1e5, 1e4, 0, scale="demo", data="lle_demo/itmn"), {"mpsnr": 11.0, "ssim": 0.5, "psnr": 9.0})
  runs = report.load_runs(str(tmp_path))
  full, demo = sorted(report.build_tables(report.TABLES["itmn_table2"], runs), key=lambda t: t["group"][3], reverse=True)
  cell = full["cells"]["1e5/1e4"]["mpsnr"]
  assert cell["n"] == 2 and cell["mean"] == 21.0 and abs(cell["std"] - 2 ** 0.5) < 1e-12  # NoAdvReg, demo out
  assert demo["cells"]["1e5/1e4"]["mpsnr"] == {"n": 1, "mean": 11.0, "std": 0.0}
  assert full["title"].endswith("on hdr/reinhard, full scale") and demo["title"].endswith("on lle_demo/itmn, demo scale")
  assert full["cells"]["1e3/1e4"]["psnr"]["n"] == 1 and full["cells"]["1e7/1e4"]["mpsnr"]["n"] == 0
  reference = {"1e5/1e4": {"mpsnr": 21.61}}
  md = report.to_markdown(full, reference)
  assert "| mpsnr | 18 (n=1) | 21 ± 1.4 (n=2) | missing | missing | missing |" in md
  assert "| paper: mpsnr | — | 21.61 | — | — | — |" in md
  assert "paper:" not in report.to_markdown(demo, reference)  # not beside demo runs
  assert "1e7/1e4,mpsnr,,,0,ours" in report.to_csv(full, None)  # missing stays empty, never 0
  with pytest.raises(ValueError, match="would share cells"):
    report.build_table(report.TABLES["itmn_table2"], runs)


def test_itmn_table1_columns_are_variant_tags_and_files_per_scale(tmp_path):
  runs_dir = tmp_path / "runs"
  for seed, (mp, ss) in enumerate([(20.0, 0.8), (21.0, 0.82)]):
    _run(runs_dir, f"full{seed}", _itmn(10.0, 1e4, seed), {"mpsnr": mp, "ssim": ss, "psnr": 24.0})
  _run(runs_dir, "nodmse", _itmn(0.0, 1e4, 0, variant="nodmse"), {"mpsnr": 19.0, "ssim": 0.7, "psnr": 23.0})
  # A full-model run whose alpha happens to be 0 is still the full model: tags, not incidental fields.
  _run(runs_dir, "full_alpha0", _itmn(0.0, 1e4, 5), {"mpsnr": 20.5, "ssim": 0.81, "psnr": 24.0})
  runs = report.load_runs(str(runs_dir))
  md = report.write_table("itmn_table1", report.TABLES["itmn_table1"], runs, str(tmp_path / "out"), None)
  assert "| mpsnr | 20.5 ± 0.5 (n=3) | 19 (n=1) | missing |" in md
  for ext in ("md", "tex", "csv", "png"):
    assert (tmp_path / "out" / f"itmn_table1.{ext}").stat().st_size > 0
  assert r"$\pm$" in (tmp_path / "out" / "itmn_table1.tex").read_text()
  _run(runs_dir, "demo", _itmn(10.0, 1e4, 0, scale="demo", data="lle_demo/itmn"), {"mpsnr": 5.0})
  runs = report.load_runs(str(runs_dir))
  md = report.write_table("itmn_table1", report.TABLES["itmn_table1"], runs, str(tmp_path / "split"), None)
  assert (tmp_path / "split" / "itmn_table1--lle_demo_itmn--demo.md").exists()
  assert (tmp_path / "split" / "itmn_table1--hdr_reinhard--full.png").stat().st_size > 0
  assert "| mpsnr | 5 (n=1) | missing | missing |" in md and "| mpsnr | 20.5 ± 0.5 (n=3) |" in md
  report.write_table("itmn_table2", report.TABLES["itmn_table2"], runs, str(tmp_path / "out"), None)
  assert (tmp_path / "out" / "itmn_table2--hdr_reinhard--full.png").stat().st_size > 0  # heatmap, missing cells


def test_custom_spec_and_conditions():
  spec = {"title": "t", "where": {"method": "m"}, "metrics": ["psnr"],
          "columns": [{"label": "big", "where": {"x": {"ne": 0}}}, {"label": "zero", "where": {"x": 0}}]}
  runs = [{"dir": "1", "config": {"method": "m", "x": 3}, "model": {"psnr": 1.0}},
          {"dir": "2", "config": {"method": "m", "x": 0}, "model": {"psnr": 2.0}},
          {"dir": "3", "config": {"method": "other", "x": 0}, "model": {"psnr": 9.0}}]
  table = report.build_table(spec, runs)
  assert table["cells"]["big"]["psnr"]["mean"] == 1.0 and table["cells"]["zero"]["psnr"]["mean"] == 2.0
  assert report.matches({"a": {"b": True}}, {"a.b": True}) and not report.matches({"a": {"b": 1}}, {"a.b": True})
  tagged = {"variants": ["paper", "fivek"]}
  assert report.matches(tagged, {"variants": {"has": "paper"}}) and not report.matches(tagged, {"variants": {"has": "code"}})
  assert report.matches(tagged, {"variants": {"lacks": ["demo", "tiny"]}})
  assert not report.matches(tagged, {"variants": {"lacks": ["fivek"]}}) and not report.matches({}, {"variants": {"has": "x"}})
  assert report.matches({"method": "neid"}, {"method": {"in": ["neid", "gladnet"]}})
  with pytest.raises(ValueError, match="unknown condition"):
    report.matches(tagged, {"variants": {"contains": "paper"}})


def test_tmgan_table1_takes_the_identity_column_from_the_baselines_and_only_the_montulet_split(tmp_path):
  fivek = {"name": "mit_fivek/expert_c_montulet", "eval_split": "test"}
  for name, method, variants, model, identity, weights in [
      ("t", "tmgan", ["paper"], {"psnr": 20.5, "mse_8bit": 900.0, "fsitm": 0.9},
       {"psnr": 9.0, "mse_8bit": 8000.0, "fsitm": 0.7}, "trained"),
      ("t_down8", "tmgan", ["down8"], {"psnr": 1.0, "mse_8bit": 1.0, "fsitm": 0.1}, None, "trained"),
      ("g", "gladnet", ["code", "montulet"], {"psnr": 18.0, "mse_8bit": 1200.0, "fsitm": 0.88}, None, "trained"),
      ("g2", "gladnet", ["code", "montulet"], {"psnr": 17.0, "mse_8bit": 1300.0, "fsitm": 0.86}, None, "trained"),
      ("release", "gladnet", ["code", "montulet"], {"psnr": 13.0, "mse_8bit": 3000.0, "fsitm": 0.84}, None,
       "release"),
      ("untagged", "gladnet", ["code", "montulet"], {"psnr": 99.0, "mse_8bit": 1.0, "fsitm": 0.99}, None, None)]:
    d = tmp_path / name
    d.mkdir()
    results = {"config": {"method": method, "data": fivek, "scale": "full", "variants": variants}, "model": model,
               "step": 1, "baselines": {"identity": identity} if identity else {}}
    if weights:
      results["weights"] = weights
    (d / "results.json").write_text(json.dumps(results))
  _run(tmp_path, "demo", {"method": "tmgan", "data": {"name": "lle_demo/lowlight"}, "scale": "demo",
                          "variants": ["paper", "demo"]}, {"psnr": 1.0})
  tables = report.build_tables(report.TABLES["tmgan_table1"], report.load_runs(str(tmp_path)))
  assert len(tables) == 1  # the demo run is on other data: not considered
  table = tables[0]
  assert table["cells"]["proposed network"]["psnr"] == {"n": 1, "mean": 20.5, "std": 0.0}  # not down8's
  assert table["cells"]["identity"]["mse_8bit"]["mean"] == 8000.0
  # The released GLADNet and the retrained runs never share a cell; a run without the tag is in neither.
  assert table["cells"]["GLADNet (released weights)"]["psnr"] == {"n": 1, "mean": 13.0, "std": 0.0}
  retrained = table["cells"]["GLADNet (retrained)"]["fsitm"]
  assert retrained["n"] == 2 and retrained["mean"] == pytest.approx(0.87)
  assert table["cells"]["Deep Retinex"]["psnr"]["n"] == 0
  reference = {k: v for k, v in json.load(open(report.FLAGS["reference"].default))["tmgan_table1"].items()
               if not k.startswith("_")}
  md = report.to_markdown(table, reference)
  assert "| paper: psnr | 13.04 | 13.79 | — | 14.24 | 19.72 | — |" in md
  assert "| psnr | missing | 13 (n=1) | 17.5 ± 0.71 (n=2) | missing | 20.5 (n=1) | 9 (n=1) |" in md


def test_neid_table1_neid_and_gladnet_beside_the_paper_and_whatever_baselines_the_runs_hold():
  reference = json.load(open(report.FLAGS["reference"].default))["neid_table1"]
  runs = _spec_runs([
      ("configs/neid.py", {"psnr": 22.0, "ssim": 0.77}, {"identity": {"psnr": 7.8, "ssim": 0.2},
                                                          "bimef": {"psnr": 13.9, "ssim": 0.59}}),
      ("configs/neid.py", {"psnr": 23.0, "ssim": 0.79}, {"identity": {"psnr": 7.8, "ssim": 0.2},
                                                          "bimef": {"psnr": 13.9, "ssim": 0.59},
                                                          "clahe": {"psnr": 12.0, "ssim": 0.4}}),
      ("configs/gladnet.py", {"psnr": 19.5, "ssim": 0.7}),
      ("configs/gladnet.py:paper", {"psnr": 5.0, "ssim": 0.1}),  # not the GLAD column (the code's model)
      ("configs/neid.py:le", {"psnr": 1.0, "ssim": 0.1}),  # an ablation: not "Ours"
      ("configs/neid.py:demo", {"psnr": 15.0, "ssim": 0.5}),  # other data and scale: not considered
  ])
  tables = report.build_tables(report.TABLES["neid_table1"], runs)
  assert len(tables) == 1
  table = tables[0]
  assert table["title"].endswith("on lol/v1, full scale")
  assert table["cells"]["Ours"]["psnr"] == {"n": 2, "mean": 22.5, "std": pytest.approx(2 ** 0.5 / 2)}
  assert table["cells"]["GLAD"]["psnr"] == {"n": 1, "mean": 19.5, "std": 0.0}
  assert table["cells"]["BIMEF"]["psnr"]["mean"] == 13.9  # lle's bimef fills the paper's BIMEF column
  assert table["columns"][-2:] == ["clahe", "identity"] and table["cells"]["clahe"]["ssim"]["n"] == 1
  md = report.to_markdown(table, {k: v for k, v in reference.items() if not k.startswith("_")})
  assert "| paper: psnr | 13.88 | 17.2 | 16.72 | 16.76 | 18.79 | 16.77 | 13.17 | 16.97 | 19.72 | 20.87 | 22.83 | — | — |" in md
  assert "| psnr | 13.9 ± 0 (n=2) | missing | missing | missing | missing | missing | missing | missing | 19.5 (n=1) |" in md


def test_neid_table2_ablations_never_share_a_cell_with_demo_runs():
  runs = _spec_runs([("configs/neid.py:unet", {"psnr": 19.0}), ("configs/neid.py:le", {"psnr": 20.0}),
                     ("configs/neid.py:le_dr", {"psnr": 21.0}), ("configs/neid.py", {"psnr": 22.0}),
                     ("configs/neid.py:le_dr_ff,demo", {"psnr": 16.0}), ("configs/neid.py:unet,demo", {"psnr": 15.0})])
  full, demo = sorted(report.build_tables(report.TABLES["neid_table2"], runs), key=lambda t: t["group"][3],
                      reverse=True)
  assert [full["cells"][c]["psnr"]["mean"] for c in full["columns"]] == [19.0, 20.0, 21.0, 22.0]
  assert [demo["cells"][c]["psnr"]["n"] for c in demo["columns"]] == [1, 0, 0, 1]
  assert demo["cells"]["LE + DR + FF"]["psnr"]["mean"] == 16.0 and not demo["paper_data"] and full["paper_data"]


def test_iqe_table1_splits_data_sets_and_scales_and_shows_the_paper_only_beside_fivek():
  reference = json.load(open(report.FLAGS["reference"].default))["iqe_table1"]
  reference = {k: v for k, v in reference.items() if not k.startswith("_")}
  runs = _spec_runs([
      ("configs/iqe.py:paper,fivek", {"psnr": 22.0, "ssim": 0.90}), ("configs/iqe.py:paper,fivek", {"psnr": 24.0, "ssim": 0.92}),
      ("configs/iqe.py:fivek", {"psnr": 21.5, "ssim": 0.88}),
      ("configs/iqe.py", {"psnr": 20.0, "ssim": 0.80}),  # DPED iPhone: must not share "DPED code" with FiveK
      ("configs/iqe.py:release", {"psnr": 21.0, "ssim": 0.85}),
      ("configs/iqe.py:demo", {"psnr": 15.0, "ssim": 0.5}), ("configs/iqe.py:paper,demo", {"psnr": 14.0, "ssim": 0.4}),
      ("configs/iqe.py:tiny", {"psnr": 9.0, "ssim": 0.1}),
  ])
  tables = {t["group"][0] + "/" + t["group"][3]: t for t in report.build_tables(report.TABLES["iqe_table1"], runs)}
  assert sorted(tables) == ["dped/iphone/full", "lle_demo/lowlight/demo", "lle_demo/lowlight/tiny",
                            "mit_fivek/expert_c/full"]
  fivek, iphone = tables["mit_fivek/expert_c/full"], tables["dped/iphone/full"]
  demo, tiny = tables["lle_demo/lowlight/demo"], tables["lle_demo/lowlight/tiny"]
  assert fivek["cells"]["Our Work"]["psnr"] == {"n": 2, "mean": 23.0, "std": pytest.approx(2 ** 0.5)}
  assert fivek["cells"]["DPED code"]["psnr"] == {"n": 1, "mean": 21.5, "std": 0.0}
  assert iphone["cells"]["DPED code"]["psnr"] == {"n": 1, "mean": 20.0, "std": 0.0}
  assert iphone["cells"]["DPED release"]["ssim"]["n"] == 1 and fivek["cells"]["DPED release"]["ssim"]["n"] == 0
  assert demo["cells"]["DPED code"]["psnr"]["mean"] == 15.0 and demo["cells"]["Our Work"]["psnr"]["mean"] == 14.0
  assert tiny["cells"]["DPED code"]["psnr"]["mean"] == 9.0
  assert fivek["cells"]["CURL"]["psnr"]["n"] == 0
  assert "on mit_fivek/expert_c, full scale" in fivek["title"] and "on lle_demo/lowlight, demo scale" in demo["title"]
  markdown = report.to_markdown(fivek, reference)
  assert "| paper: psnr | 23.04 | — | — | — | 24.2 | 22.15 | 21.96 | 20.97 | 18.57 |" in markdown
  assert "| psnr | 23 ± 1.4 (n=2) | missing | 21.5 (n=1) | missing | missing |" in markdown
  for other in (iphone, demo, tiny):
    assert "paper:" not in report.to_markdown(other, reference)


def test_one_run_scored_two_ways_gives_two_tables(tmp_path):
  """The iqe demo scored as DPED scores (batch pooling, unclipped) and as the paper reads (per image,
  clipped): two tables, never one cell of n=2."""
  config = load_config("configs/iqe.py:demo").to_dict()
  dped = {"quantize_8bit": False, "quantize_rounding": "round", "color": "rgb", "ssim_window": "gaussian",
          "psnr_pooling": "batch", "clip": False, "pooling_batch_size": 3}
  paper = {**{k: v for k, v in dped.items() if k != "pooling_batch_size"}, "psnr_pooling": "image", "clip": True}
  for name, conventions, psnr in (("batch", dped, 13.88), ("image", paper, 14.20)):
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps({"config": config, "model": {"psnr": psnr}, "conventions": conventions}))
  runs = report.load_runs(str(tmp_path))
  tables = report.build_tables(report.TABLES["iqe_table1"], runs)
  assert sorted(t["cells"]["DPED code"]["psnr"]["mean"] for t in tables) == [13.88, 14.20]
  titles = sorted(t["title"] for t in tables)
  assert titles[0].endswith("on lle_demo/lowlight, demo scale")
  assert titles[1].endswith("on lle_demo/lowlight, demo scale; scored with clip=False, pooling_batch_size=3, "
                            "psnr_pooling=batch")
  report.write_table("iqe_table1", report.TABLES["iqe_table1"], runs, str(tmp_path / "out"), None)
  assert (tmp_path / "out" / "iqe_table1--lle_demo_lowlight--demo--clip-False_pooling_batch_size-3_psnr_pooling-batch.md").exists()

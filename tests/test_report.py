import json

from lle import report


def _run(root, name, config, model):
  d = root / name
  d.mkdir(parents=True)
  (d / "results.json").write_text(json.dumps({"config": config, "model": model, "step": 1}))


def _itmn(alpha, lam, seed, adversarial=True):
  return {"method": "itmn", "seed": seed, "loss": {"alpha": alpha, "lam": lam, "adversarial": adversarial}}


def test_table2_means_stds_and_missing_cells(tmp_path):
  _run(tmp_path, "a", _itmn(1e5, 1e4, 0), {"mpsnr": 20.0, "ssim": 0.8, "psnr": 25.0})
  _run(tmp_path, "b", _itmn(1e5, 1e4, 1), {"mpsnr": 22.0, "ssim": 0.9, "psnr": 27.0})
  _run(tmp_path, "c", _itmn(1e3, 1e4, 0), {"mpsnr": 18.0, "ssim": 0.7, "psnr": 23.0})
  _run(tmp_path, "d", _itmn(1e5, 1e4, 2, adversarial=False), {"mpsnr": 99.0, "ssim": 0.1, "psnr": 1.0})
  runs = report.load_runs(str(tmp_path))
  table = report.build_table(report.TABLES["itmn_table2"], runs)
  cell = table["cells"]["1e5/1e4"]["mpsnr"]
  assert cell["n"] == 2 and cell["mean"] == 21.0 and abs(cell["std"] - 2 ** 0.5) < 1e-12  # NoAdvReg run excluded
  assert table["cells"]["1e3/1e4"]["psnr"]["n"] == 1
  assert table["cells"]["1e7/1e4"]["mpsnr"]["n"] == 0
  md = report.to_markdown(table, {"1e5/1e4": {"mpsnr": 21.61}})
  assert "| mpsnr | 18 (n=1) | 21 ± 1.4 (n=2) | missing | missing | missing |" in md
  assert "| paper: mpsnr | — | 21.61 | — | — | — |" in md
  csv_text = report.to_csv(table, None)
  assert "1e7/1e4,mpsnr,,,0,ours" in csv_text  # missing stays empty, never 0


def test_ablation_table_and_outputs(tmp_path):
  runs_dir = tmp_path / "runs"
  for seed, (mp, ss) in enumerate([(20.0, 0.8), (21.0, 0.82)]):
    _run(runs_dir, f"full{seed}", _itmn(10.0, 1e4, seed), {"mpsnr": mp, "ssim": ss, "psnr": 24.0})
  _run(runs_dir, "nodmse", _itmn(0.0, 1e4, 0), {"mpsnr": 19.0, "ssim": 0.7, "psnr": 23.0})
  runs = report.load_runs(str(runs_dir))
  md = report.write_table("itmn_table1", report.TABLES["itmn_table1"], runs, str(tmp_path / "out"), None)
  assert "| mpsnr | 20.5 ± 0.71 (n=2) | 19 (n=1) | missing |" in md
  for ext in ("md", "tex", "csv", "png"):
    assert (tmp_path / "out" / f"itmn_table1.{ext}").stat().st_size > 0
  assert r"$\pm$" in (tmp_path / "out" / "itmn_table1.tex").read_text()
  report.write_table("itmn_table2", report.TABLES["itmn_table2"], runs, str(tmp_path / "out"), None)
  assert (tmp_path / "out" / "itmn_table2.png").stat().st_size > 0  # heatmap with missing cells


def test_custom_spec_and_conditions():
  spec = {"title": "t", "where": {"method": "m"}, "metrics": ["psnr"],
          "columns": [{"label": "big", "where": {"x": {"ne": 0}}}, {"label": "zero", "where": {"x": 0}}]}
  runs = [{"dir": "1", "config": {"method": "m", "x": 3}, "model": {"psnr": 1.0}},
          {"dir": "2", "config": {"method": "m", "x": 0}, "model": {"psnr": 2.0}},
          {"dir": "3", "config": {"method": "other", "x": 0}, "model": {"psnr": 9.0}}]
  table = report.build_table(spec, runs)
  assert table["cells"]["big"]["psnr"]["mean"] == 1.0 and table["cells"]["zero"]["psnr"]["mean"] == 2.0
  assert report.matches({"a": {"b": True}}, {"a.b": True}) and not report.matches({"a": {"b": 1}}, {"a.b": True})


def test_tmgan_table1_takes_the_identity_column_from_the_baselines_and_only_the_montulet_split(tmp_path):
  fivek = {"name": "mit_fivek/expert_c_montulet"}
  for name, method, model, identity in [("t", "tmgan", {"psnr": 20.5, "mse_8bit": 900.0, "fsitm": 0.9},
                                         {"psnr": 9.0, "mse_8bit": 8000.0, "fsitm": 0.7}),
                                        ("g", "gladnet", {"psnr": 18.0, "mse_8bit": 1200.0, "fsitm": 0.88}, None)]:
    d = tmp_path / name
    d.mkdir()
    results = {"config": {"method": method, "data": fivek}, "model": model, "step": 1,
               "baselines": {"identity": identity} if identity else {}}
    (d / "results.json").write_text(json.dumps(results))
  _run(tmp_path, "demo", {"method": "tmgan", "data": {"name": "lle_demo/lowlight"}}, {"psnr": 1.0})
  table = report.build_table(report.TABLES["tmgan_table1"], report.load_runs(str(tmp_path)))
  assert table["cells"]["proposed network"]["psnr"] == {"n": 1, "mean": 20.5, "std": 0.0}  # demo run excluded
  assert table["cells"]["identity"]["mse_8bit"]["mean"] == 8000.0
  assert table["cells"]["GLADNet"]["fsitm"]["mean"] == 0.88
  assert table["cells"]["Deep Retinex"]["psnr"]["n"] == 0
  reference = json.load(open(report.FLAGS["reference"].default))["tmgan_table1"]
  md = report.to_markdown(table, reference)
  assert "| paper: psnr | 13.04 | 13.79 | 14.24 | 19.72 | — |" in md
  assert "| psnr | missing | 18 (n=1) | missing | 20.5 (n=1) | 9 (n=1) |" in md

"""Tables from run folders: `python -m lle.report RUNS_DIR --out=OUT [--tables=a,b] [--spec=FILE]
[--reference=FILE]`.

Reads every `results.json` under RUNS_DIR (written by the trainer, shape documented in
`lle/evaluate.py`), assigns each run to a table column by conditions on its config, and writes per table
`OUT/<table>.md`, `.tex`, `.csv` and a `.png` figure (a heatmap over two config keys, or bars with error
bars). Cells are mean +- sample standard deviation over the runs in the cell (seeds), with their count;
a column without runs is shown as `missing`, never as a number. Published values from a reference file
are shown in separate rows labelled `paper`.

Tags. Columns select runs on explicit tags that every config writes (`lle.config_lib.apply_variants`):
`variants`, the config variants a run was made with (`("paper", "fivek")`; a method's default model
variant is named even when the command line names none: `configs/iqe.py` gives `("code",)`), and
`scale`, "full", "demo" or "tiny". A sweep table's columns may also select on the hyperparameter the sweep
varies (itmn_table2's alpha / lambda), inside a table that selects its model by tag. To give a run a
column of its own, run it with a variant that names it (a `release` variant for released weights, say)
and select `{"variants": {"has": "release"}}`.

Data sets, scales and scorings never mix: the runs a table considers are split by data set (config
data.name, eval_split and eval_limit), scale and scoring conventions (results.json "conventions" that
differ from lle's defaults, e.g. DPED's psnr_pooling=batch); each group gets its own table, titled with
them ("... on lle_demo/lowlight, demo scale"), written to `OUT/<table>.md` when there is one group and to
`OUT/<table>--<data set>--<scale>[--<scoring>].md` (and .tex, .csv, .png) for each group when there are
several.
Published values appear only beside runs on the paper's data at full scale (`paper_data`).

A table spec (built in below, or JSON via --spec) is:
  {"title": str, "where": {key: cond},             # which runs the table considers
   "columns": [{"label": str, "where": {key: cond}}, ...],
   "metrics": [str, ...],                           # rows, from results["model"]
   "paper_data": [data.name, ...],                  # where the reference rows belong (none: never shown)
   "baseline_columns": {baseline: label} | absent,  # see below
   "figure": {"kind": "heatmap", "x": key, "y": key, "metric": str} | {"kind": "bars"}}
with `key` a dotted config path (or `variants` / `scale`) and `cond` a value (equal, floats to 1e-9
relative), {"ne": value}, {"has": value} (a list field holds it) or {"lacks": [values]} (holds none of
them). A column may add "system": "<baseline>" to take a baseline's scores from the runs it matches
(results["baselines"][name]) instead of the model's, or "paper_only": true for a method lle does not run
(its cells stay `missing`; the reference rows fill it). With "baseline_columns", every baseline found in
the considered runs' results["baselines"] gets a column: the label it maps to (a paper column of the same
method) or its own name. A column may also add
"weights": "release" | "trained" to take only runs whose results.json says so (imported published weights
or lle's own training; a run without the tag matches neither), so that a released model and retrained runs
never share a cell.
"""
import csv
import io
import json
import math
import os
import sys

import numpy as np
from absl import app, flags

from lle import cli

_FULL = {"scale": "full"}

TABLES = {
    "itmn_table2": {
        "title": "iTMN Table 2: alpha / lambda (Ning et al. 2018, sec. 4.2)",
        "where": {"method": "itmn", "variants": {"has": "full"}},
        "columns": [{"label": f"{a}/{l}", "where": {"loss.alpha": float(a), "loss.lam": float(l)}}
                    for a, l in (("1e3", "1e4"), ("1e5", "1e4"), ("1e7", "1e4"), ("1e5", "1e2"), ("1e5", "1e6"))],
        "metrics": ["hdrvdp2_q", "mpsnr", "ssim", "psnr"],
        "paper_data": ["hdr/reinhard"],
        "figure": {"kind": "heatmap", "x": "loss.lam", "y": "loss.alpha", "metric": "mpsnr"},
    },
    "itmn_table1": {
        "title": "iTMN Table 1: ablations (Ning et al. 2018, sec. 4.1)",
        "where": {"method": "itmn"},
        "columns": [
            {"label": "iTMN", "where": {"variants": {"has": "full"}}},
            {"label": "NoDMSE", "where": {"variants": {"has": "nodmse"}}},
            {"label": "NoAdvReg", "where": {"variants": {"has": "noadvreg"}}},
        ],
        "metrics": ["hdrvdp2_q", "mpsnr", "ssim", "psnr"],
        "paper_data": ["hdr/reinhard"],
        "figure": {"kind": "bars"},
    },
    "tmgan_table1": {
        "title": "Montulet & Briassouli Table 1: MIT-Adobe FiveK expert C, Montulet split (442 test images)",
        "where": {"data.name": "mit_fivek/expert_c_montulet"},
        "columns": [
            {"label": "Deep Photo Enhancer", "paper_only": True},  # not in lle: paper values only
            # Sec. 4.2: "the weights provided on their respective Github pages" (configs/gladnet.py:montulet).
            {"label": "GLADNet (released weights)", "where": {"method": "gladnet"}, "weights": "release"},
            {"label": "GLADNet (retrained)", "where": {"method": "gladnet"}, "weights": "trained"},
            {"label": "Deep Retinex", "paper_only": True},  # not in lle: paper values only
            {"label": "proposed network", "where": {"method": "tmgan", "variants": {"has": "paper"}}},
            {"label": "identity", "where": {"method": "tmgan", "variants": {"has": "paper"}}, "system": "identity"},
        ],
        "metrics": ["psnr", "mse_8bit", "fsitm"],
        "paper_data": ["mit_fivek/expert_c_montulet"],
        "figure": {"kind": "bars"},
    },
    "neid_table1": {
        "title": "NEID Table 1: LOL (Jiang et al. 2021, sec. 3.2)",
        "where": {"method": {"in": ["neid", "gladnet"]}, "data.name": "lol/v1"},
        "columns": [
            {"label": "BIMEF", "paper_only": True},
            {"label": "CRM", "paper_only": True},
            {"label": "Dong", "paper_only": True},
            {"label": "LIME", "paper_only": True},
            {"label": "MF", "paper_only": True},
            {"label": "Retinex-Net", "paper_only": True},
            {"label": "MSR", "paper_only": True},
            {"label": "NPE", "paper_only": True},
            {"label": "GLAD", "where": {"method": "gladnet", "variants": {"has": "code"}}},
            {"label": "KinD", "paper_only": True},
            {"label": "Ours", "where": {"method": "neid", "variants": {"has": "le_dr_ff"}}},
        ],
        # Training-free baselines that lle computes land in the paper's column of the same method.
        "baseline_columns": {"bimef": "BIMEF", "msr": "MSR", "lime": "LIME", "npe": "NPE", "dong": "Dong",
                             "mf": "MF", "crm": "CRM"},
        "metrics": ["psnr", "ssim"],
        "paper_data": ["lol/v1"],
        "figure": {"kind": "bars"},
    },
    "neid_table2": {
        "title": "NEID Table 2: ablations (Jiang et al. 2021, sec. 3.4)",
        "where": {"method": "neid"},
        "columns": [
            {"label": "U-net", "where": {"variants": {"has": "unet"}}},
            {"label": "LE", "where": {"variants": {"has": "le"}}},
            {"label": "LE + DR", "where": {"variants": {"has": "le_dr"}}},
            {"label": "LE + DR + FF", "where": {"variants": {"has": "le_dr_ff"}}},
        ],
        "metrics": ["psnr", "ssim"],
        "paper_data": ["lol/v1"],
        "figure": {"kind": "bars"},
    },
    "iqe_table1": {
        "title": "IQE Table 1: PSNR / SSIM (Adlakha et al. 2021, \"Result and Discussion\")",
        "where": {"method": "iqe"},
        "columns": [
            {"label": "Our Work", "where": {"variants": {"has": "paper"}}},
            {"label": "Our Work (batch norm)", "where": {"variants": {"has": "paper_bn"}}},
            {"label": "DPED code", "where": {"variants": {"has": "code"}}},
            {"label": "DPED release", "where": {"variants": {"has": "release"}}},
            {"label": "CURL", "paper_only": True},
            {"label": "DPE", "paper_only": True},
            {"label": "HDRNet", "paper_only": True},
            {"label": "Distort-and-recover", "paper_only": True},
            {"label": "White-Box", "paper_only": True},
        ],
        "metrics": ["psnr", "ssim", "ms_ssim_dped"],
        # Where the paper's rows belong: its two data sets; Table 1's other rows are FiveK scores.
        "paper_data": ["mit_fivek/expert_c", "s7/short_jpg"],
        "figure": {"kind": "bars"},
    },
}

MISSING = "missing"


def get_path(tree: dict, path: str):
  for part in path.split("."):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _equal(value, target) -> bool:
  if isinstance(target, bool) or isinstance(value, bool):
    return isinstance(value, bool) and isinstance(target, bool) and value == target
  if isinstance(target, (int, float)) and isinstance(value, (int, float)):
    return math.isclose(value, target, rel_tol=1e-9, abs_tol=0.0)
  return value == target


def _holds(value, cond) -> bool:
  if isinstance(cond, dict):
    if "ne" in cond:
      return value is not None and not _equal(value, cond["ne"])
    if "has" in cond:
      return isinstance(value, (list, tuple)) and any(_equal(v, cond["has"]) for v in value)
    if "lacks" in cond:
      return isinstance(value, (list, tuple)) and not any(_equal(v, c) for v in value for c in cond["lacks"])
    if "in" in cond:
      return value is not None and any(_equal(value, c) for c in cond["in"])
    raise ValueError(f"unknown condition {cond!r}; expected a value or one of ne / has / lacks / in")
  return value is not None and _equal(value, cond)


def matches(config: dict, where: dict) -> bool:
  return all(_holds(get_path(config, key), cond) for key, cond in where.items())


def _scoring(run: dict) -> tuple:
  """The run's scoring conventions (results.json) that differ from lle's defaults, as sorted pairs."""
  from lle.evaluate import CONVENTIONS
  conventions = run.get("conventions") or {}
  return tuple(sorted((k, v) for k, v in conventions.items()
                      if k not in CONVENTIONS or v != CONVENTIONS[k][0]))


def group_key(run: dict) -> tuple:
  """(data set, eval split, eval limit, scale, scoring) of a run: what a cell must never mix."""
  c = run["config"]
  return (get_path(c, "data.name"), get_path(c, "data.eval_split"), get_path(c, "data.eval_limit"),
          get_path(c, "scale") or "unknown", _scoring(run))


def describe(key: tuple) -> str:
  """"lle_demo/lowlight, demo scale" (with the split when it is not `test`, any image limit, and the
  scoring conventions that are not lle's defaults)."""
  name, split, limit, scale, scoring = key
  where = f"{name}" + ("" if split in (None, "test") else f" ({split})") + (f", first {limit} images" if limit else "")
  scored = f"; scored with {', '.join(f'{k}={v}' for k, v in scoring)}" if scoring else ""
  return f"{where}, {scale} scale{scored}"


def load_runs(root: str) -> list[dict]:
  """Every results.json under `root`, as {"dir", "config", "model", ...}."""
  runs = []
  for dirpath, _, files in sorted(os.walk(root)):
    if "results.json" in files:
      with open(os.path.join(dirpath, "results.json")) as f:
        results = json.load(f)
      runs.append({"dir": dirpath, **results})
  return runs


def cell_stats(values: list[float]) -> dict:
  if not values:
    return {"n": 0, "mean": None, "std": None}
  arr = np.asarray(values, dtype=np.float64)
  return {"n": len(values), "mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def _columns(spec: dict, considered: list[dict]) -> list[dict]:
  """The spec's columns, plus one per baseline found in the runs when it asks for `baseline_columns`."""
  columns = [dict(c) for c in spec["columns"]]
  mapping = spec.get("baseline_columns")
  if mapping is None:
    return columns
  found = sorted({name for r in considered for name in r.get("baselines", {})})
  labels = [c["label"] for c in columns]
  for name in found:
    label = mapping.get(name, name)
    column = {"label": label, "where": {}, "system": name}
    if label in labels:  # a paper column of the same method: lle's scores fill it
      columns[labels.index(label)] = column
    else:
      columns.append(column)
      labels.append(label)
  return columns


def build_table(spec: dict, runs: list[dict]) -> dict:
  """One table over runs of a single data set and scale (see `build_tables`):
  {"columns": [label], "metrics": [m], "cells": {label: {metric: stats}}, "runs": {label: [dirs]}}"""
  considered = [r for r in runs if matches(r["config"], spec.get("where", {}))]
  keys = {group_key(r) for r in considered}
  if len(keys) > 1:
    raise ValueError(f"{spec['title']}: runs of several data sets / scales {sorted(map(str, keys))} would share "
                     "cells; use build_tables")
  cells, members = {}, {}
  columns = _columns(spec, considered)
  for column in columns:
    chosen = [] if column.get("paper_only") else [r for r in considered if matches(r["config"], column["where"])
                                                       and ("weights" not in column or r.get("weights") == column["weights"])]
    members[column["label"]] = [r["dir"] for r in chosen]
    scores = [r.get("baselines", {}).get(column["system"], {}) if "system" in column else r.get("model", {})
              for r in chosen]
    cells[column["label"]] = {m: cell_stats([s[m] for s in scores if m in s]) for m in spec["metrics"]}
  key = next(iter(keys)) if keys else None
  title = spec["title"] if key is None else f"{spec['title']} on {describe(key)}"
  return {"title": title, "columns": [c["label"] for c in columns], "metrics": spec["metrics"],
          "cells": cells, "runs": members, "considered": considered, "group": key,
          "paper_data": key is not None and key[0] in spec.get("paper_data", ()) and key[3] == "full"}


def build_tables(spec: dict, runs: list[dict]) -> list[dict]:
  """One table per data set and scale among the runs the spec considers, in a stable order."""
  considered = [r for r in runs if matches(r["config"], spec.get("where", {}))]
  groups = {}
  for r in considered:
    groups.setdefault(group_key(r), []).append(r)
  return [build_table(spec, groups[k]) for k in sorted(groups, key=str)]


def _fmt(stats: dict, digits: int = 4) -> str:
  if stats["n"] == 0:
    return MISSING
  if stats["n"] == 1:
    return f"{stats['mean']:.{digits}g} (n=1)"
  return f"{stats['mean']:.{digits}g} ± {stats['std']:.2g} (n={stats['n']})"


def rows(table: dict, reference: dict | None) -> list[list[str]]:
  """Our rows, then the published values when the table's runs are on the paper's data at full scale."""
  reference = reference if table.get("paper_data") else None
  out = [["metric"] + table["columns"]]
  for m in table["metrics"]:
    out.append([m] + [_fmt(table["cells"][c][m]) for c in table["columns"]])
  if reference:
    ref_metrics = sorted({m for col in reference.values() for m in col})
    for m in ref_metrics:
      out.append([f"paper: {m}"] + [str(reference.get(c, {}).get(m, "—")) for c in table["columns"]])
  return out


def to_markdown(table: dict, reference: dict | None) -> str:
  body = rows(table, reference)
  lines = [f"**{table['title']}** (mean ± std over runs; ours unless labelled paper)", "",
           "| " + " | ".join(body[0]) + " |", "|" + "---|" * len(body[0])]
  lines += ["| " + " | ".join(r) + " |" for r in body[1:]]
  return "\n".join(lines) + "\n"


def to_latex(table: dict, reference: dict | None) -> str:
  body = rows(table, reference)
  esc = lambda s: s.replace("±", r"$\pm$").replace("_", r"\_").replace("%", r"\%")
  lines = [r"\begin{tabular}{l" + "c" * (len(body[0]) - 1) + "}", r"\toprule",
           " & ".join(esc(c) for c in body[0]) + r" \\", r"\midrule"]
  lines += [" & ".join(esc(c) for c in r) + r" \\" for r in body[1:]]
  lines += [r"\bottomrule", r"\end{tabular}", f"% {table['title']}"]
  return "\n".join(lines) + "\n"


def to_csv(table: dict, reference: dict | None) -> str:
  reference = reference if table.get("paper_data") else None
  buf = io.StringIO()
  writer = csv.writer(buf)
  writer.writerow(["column", "metric", "mean", "std", "n", "source"])
  for c in table["columns"]:
    for m in table["metrics"]:
      s = table["cells"][c][m]
      writer.writerow([c, m, "" if s["mean"] is None else s["mean"], "" if s["std"] is None else s["std"],
                       s["n"], "ours"])
    for m, v in (reference or {}).get(c, {}).items():
      writer.writerow([c, m, v, "", "", "paper"])
  return buf.getvalue()


def figure(table: dict, spec: dict, path: str):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig_spec = spec.get("figure", {"kind": "bars"})
  if fig_spec["kind"] == "heatmap":
    x_key, y_key, metric = fig_spec["x"], fig_spec["y"], fig_spec["metric"]
    runs = table["considered"]
    xs = sorted({get_path(r["config"], x_key) for r in runs} | {c["where"][x_key] for c in spec["columns"]})
    ys = sorted({get_path(r["config"], y_key) for r in runs} | {c["where"][y_key] for c in spec["columns"]})
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, y in enumerate(ys):
      for j, x in enumerate(xs):
        vals = [r["model"][metric] for r in runs if _equal(get_path(r["config"], x_key), x)
                and _equal(get_path(r["config"], y_key), y) and metric in r["model"]]
        if vals:
          grid[i, j] = np.mean(vals)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(xs), 1.2 + 0.9 * len(ys)))
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis")
    ax.set_facecolor("0.85")
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    for i in range(len(ys)):
      for j in range(len(xs)):
        ax.text(j, i, MISSING if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}", ha="center", va="center",
                color="black" if np.isnan(grid[i, j]) else "white", fontsize=8)
    fig.colorbar(im, ax=ax, label=metric)
  else:
    metrics = table["metrics"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
      cols = table["columns"]
      means = [table["cells"][c][m]["mean"] for c in cols]
      stds = [table["cells"][c][m]["std"] or 0.0 for c in cols]
      ax.bar(range(len(cols)), [v if v is not None else 0.0 for v in means], yerr=stds, capsize=4,
             color=["C0" if v is not None else "white" for v in means], edgecolor="C0")
      for k, v in enumerate(means):
        if v is None:
          ax.text(k, 0, MISSING, ha="center", va="bottom", rotation=90, fontsize=8)
      ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
      ax.set_title(m)
      finite = [v for v in means if v is not None]
      if finite:
        lo, hi = min(finite), max(finite)
        pad = max(hi - lo, 1e-3 * max(abs(hi), 1e-9))
        ax.set_ylim(lo - 2 * pad, hi + pad)
  fig.suptitle(table["title"], fontsize=9)
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)


def _slug(key: tuple) -> str:
  scoring = "_".join(f"{k}-{v}" for k, v in key[4])
  text = "--".join(str(part) for part in (key[0], key[1], key[2], key[3], scoring) if part not in (None, "test", ""))
  return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def write_table(name: str, spec: dict, runs: list[dict], out_dir: str, reference: dict | None) -> str:
  """Writes one table per data set and scale (see the module docstring); returns their markdown."""
  tables = build_tables(spec, runs) or [build_table(spec, [])]
  os.makedirs(out_dir, exist_ok=True)
  texts = []
  for table in tables:
    stem = name if len(tables) == 1 else f"{name}--{_slug(table['group'])}"
    markdown = to_markdown(table, reference)
    for ext, text in (("md", markdown), ("tex", to_latex(table, reference)), ("csv", to_csv(table, reference))):
      with open(os.path.join(out_dir, f"{stem}.{ext}"), "w") as f:
        f.write(text)
    figure(table, spec, os.path.join(out_dir, f"{stem}.png"))
    texts.append(markdown)
  return "\n".join(texts)


FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output folder.", required=True)
flags.DEFINE_list("tables", None, "Tables to build (default: every built-in table with at least one run).")
flags.DEFINE_string("spec", None, "JSON file of extra table specs {name: spec}.")
flags.DEFINE_string("reference", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                              "sweeps", "paper_values.json"),
                    "JSON {table: {column: {metric: value}}} of published values ('' for none).")


@cli.reports_errors
def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m lle.report RUNS_DIR --out=OUT")
  cli.check_output_folder(FLAGS.out, "--out")
  runs = load_runs(argv[1])
  if not runs:
    print(f"error: no results.json under {argv[1]}", file=sys.stderr)
    sys.exit(1)
  specs = dict(TABLES)
  if FLAGS.spec:
    with open(FLAGS.spec) as f:
      specs.update(json.load(f))
  reference = {}
  if FLAGS.reference and os.path.exists(FLAGS.reference):
    with open(FLAGS.reference) as f:
      reference = json.load(f)
  names = FLAGS.tables or [n for n, s in specs.items() if any(matches(r["config"], s.get("where", {})) for r in runs)]
  if not names:
    raise ValueError(f"no table's runs are among the {len(runs)} run(s) under {argv[1]}; name tables with "
                     f"--tables (known: {', '.join(sorted(specs))})")
  for name in names:
    if name not in specs:
      raise app.UsageError(f"unknown table {name!r}; known: {sorted(specs)}")
    print(write_table(name, specs[name], runs, FLAGS.out, {k: v for k, v in reference.get(name, {}).items()
                                                           if not k.startswith("_")} or None))
  print(f"wrote {', '.join(names)} (.md .tex .csv .png) to {FLAGS.out}")


if __name__ == "__main__":
  app.run(main)

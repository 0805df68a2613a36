"""Builds a data set from a manual download into TFDS array_record files.

  python -m lle.data.build NAME[/CONFIG] --manual_dir=DIR [--data_dir=DIR] [--skip_bad] [--allow_subset]

  python -m lle.data.build lol/v1 --manual_dir=~/downloads/lol            # LOLdataset/our485, eval15
  python -m lle.data.build lol/v2_real --manual_dir=~/downloads/lol_v2
  python -m lle.data.build mit_fivek --manual_dir=~/downloads/fivek       # expert C, standard split
  python -m lle.data.build mit_fivek/expert_c_montulet --manual_dir=...   # Montulet's 442-image test
  python -m lle.data.build mit_fivek/expert_a --split_file=my_split.json --manual_dir=...
  python -m lle.data.build hdr/mixture --manual_dir=~/hdr_images [--size=512] [--peak_nits=1000]  # or hdr/reinhard
  python -m lle.data.build lowlight_nr/lime --manual_dir=~/downloads/LIME   # also dicm, npe, mef
  python -m lle.data.build dped/iphone --manual_dir=~/downloads/dped      # also blackberry, sony, <phone>_full
  python -m lle.data.build s7 --manual_dir=~/downloads/S7-ISP-Dataset    # s7/short_raw: DNG inputs (rawpy)

The data set lands in `--data_dir` (default `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`) and reads back
with `tfds.data_source('lol/v1', split='train', data_dir=...)` (after `import lle.data.lol`). TFDS writes
into an `incomplete.*` folder and renames it only when every split is written, so a failed or interrupted
build leaves nothing that reads as a data set. A bad example (a file without its partner, paired images of
different sizes, an unreadable or truncated file) stops the build with an error naming the file(s), unless
`--skip_bad` is given: then it is skipped, and the summary at the end lists every skipped file.
"""
import argparse
import os
import sys

import tensorflow_datasets as tfds

from lle import cli
from lle.data import errors

DATASETS = ("lol", "mit_fivek", "hdr", "lowlight_nr", "dped", "s7")
_HDR_FIELDS = ("size", "scaling", "peak_nits", "diffuse_white_nits", "nits_per_unit", "test_fraction", "seed")


def register() -> None:
  """Imports the builders, which registers them with TFDS."""
  import lle.data.demo  # noqa: F401
  import lle.data.dped  # noqa: F401
  import lle.data.hdr  # noqa: F401
  import lle.data.lol  # noqa: F401
  import lle.data.lowlight_nr  # noqa: F401
  import lle.data.mit_fivek  # noqa: F401
  import lle.data.s7  # noqa: F401


def _config(name: str, split_file=None, hdr_overrides=None):
  """NAME[/CONFIG] + options -> (dataset name, config name or BuilderConfig or None)."""
  dataset, _, config = name.partition("/")
  if dataset not in DATASETS:
    raise ValueError(f"unknown data set {dataset!r}; expected one of {DATASETS}")
  hdr_overrides = {k: v for k, v in (hdr_overrides or {}).items() if v is not None}
  if split_file and dataset != "mit_fivek":
    raise ValueError("--split_file applies to mit_fivek only")
  if hdr_overrides and dataset != "hdr":
    raise ValueError(f"--{'/--'.join(hdr_overrides)} apply to hdr only")
  if dataset == "mit_fivek" and split_file:
    from lle.data import mit_fivek
    base = mit_fivek.MitFivek.builder_configs.get(config or "expert_c")
    if base is None or base.scheme != "standard":
      raise ValueError(f"--split_file needs a config expert_<a-e> or expert_<a-e>_raw, not {config!r}")
    return dataset, mit_fivek.custom_config(split_file, expert=base.expert, raw=base.raw)
  if dataset == "hdr" and hdr_overrides:
    from lle.data import hdr
    base = hdr.Hdr.builder_configs.get(config or "reinhard")
    if base is None:
      raise ValueError(f"unknown hdr config {config!r}; expected one of {list(hdr.Hdr.builder_configs)}")
    return dataset, hdr.make_config(base.operator, **hdr_overrides)
  return dataset, config or None


def build(name: str, manual_dir, *, data_dir=None, skip_bad: bool = False, allow_subset: bool = False,
          overwrite: bool = False, split_file=None, hdr_overrides=None):
  """Builds NAME[/CONFIG] from `manual_dir`; returns the builder (its `bad_files` holds what was skipped)."""
  register()
  manual_dir = os.path.expanduser(str(manual_dir))
  if not os.path.isdir(manual_dir):
    raise errors.LayoutError(f"--manual_dir {manual_dir} is not a folder")
  dataset, config = _config(name, split_file, hdr_overrides)
  kwargs = {"config": config} if config is not None else {}
  builder = tfds.builder(dataset, data_dir=data_dir, skip_bad=skip_bad, allow_subset=allow_subset, **kwargs)
  if not os.listdir(manual_dir):
    raise errors.LayoutError(f"--manual_dir {manual_dir} is empty.\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")
  # A copy built with --skip_bad or --allow_subset that left something out is rebuilt by a build that
  # does not allow what it left out: it is not the data set asked for.
  partial = errors.partial_build(builder.info) if builder.is_prepared() else {}
  builder.rebuilt_partial = bool((partial.get("skipped") and not skip_bad) or (partial.get("subset") and not allow_subset))
  if builder.rebuilt_partial:
    print(f"rebuilding {name}: the built copy is partial ({errors.describe_partial(partial)})", flush=True)
  overwrite = overwrite or builder.rebuilt_partial
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
          else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.already_built = builder.is_prepared() and not overwrite
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, download_mode=mode))
  return builder


def summary(builder) -> str:
  info = builder.info
  lines = [f"{info.full_name} in {builder.data_dir}"]
  lines += [f"  {split}: {info.splits[split].num_examples} examples" for split in info.splits]
  if getattr(builder, "already_built", False):
    lines.append("already built: nothing done (--overwrite rebuilds it)")
  else:
    lines.append(builder.bad_files.summary())
  partial = errors.partial_build(info)
  if partial.get("skipped") or partial.get("subset"):
    lines.append(f"partial: {errors.describe_partial(partial)}")
  return "\n".join(lines)


def _parser():
  p = argparse.ArgumentParser(prog="python -m lle.data.build", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("name", help="lol/v1, lol/v2_real, lol/v2_synthetic, mit_fivek[/CONFIG], hdr[/OPERATOR], "
                                   "lowlight_nr/{lime,dicm,npe,mef}, dped/{iphone,blackberry,sony}[_full]")
  p.add_argument("--manual_dir", required=True, help="the folder holding the downloaded / unpacked files")
  p.add_argument("--data_dir", default=None, help="TFDS data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  p.add_argument("--skip_bad", action="store_true", help="skip (and count) bad examples instead of stopping")
  p.add_argument("--allow_subset", action="store_true", help="build from a partial download")
  p.add_argument("--overwrite", action="store_true", help="rebuild even if the data set is already built")
  p.add_argument("--split_file", default=None, help="mit_fivek: JSON or 'SPLIT ID' lines of ids per split")
  p.add_argument("--size", type=int, default=None, help="hdr: output side in pixels (default 512; 0 keeps)")
  p.add_argument("--scaling", default=None, help="hdr: peak | diffuse_white | absolute (default peak)")
  p.add_argument("--peak_nits", type=float, default=None, help="hdr: peak luminance (default 1000)")
  p.add_argument("--diffuse_white_nits", type=float, default=None, help="hdr: diffuse white (default 203)")
  p.add_argument("--nits_per_unit", type=float, default=None, help="hdr: `absolute` scale (default 1)")
  p.add_argument("--test_fraction", type=float, default=None, help="hdr: test share (default 0.1)")
  p.add_argument("--seed", type=int, default=None, help="hdr: test draw / mixture seed (default 0)")
  return p


@cli.reports_errors(also=(ImportError, RuntimeError))  # a reader that is not installed (rawpy), TFDS's own
def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  builder = build(args.name, args.manual_dir, data_dir=args.data_dir, skip_bad=args.skip_bad,
                  allow_subset=args.allow_subset, overwrite=args.overwrite, split_file=args.split_file,
                  hdr_overrides={k: getattr(args, k) for k in _HDR_FIELDS})
  print(summary(builder))
  return 0


if __name__ == "__main__":
  sys.exit(main())

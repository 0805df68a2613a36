"""Shared pieces of the method configs in `configs/`: the run-level fields every method has, and
named variants selected by `--config=configs/<method>.py:variant[,variant...]`."""
import os
from typing import Callable

import ml_collections
from ml_collections import config_dict


def base(method: str) -> ml_collections.ConfigDict:
  """Fields that every method's config has: sweeps, tables and scripts rely on these names."""
  c = ml_collections.ConfigDict()
  c.method = method
  c.seed = 0  # initialisation, data order and augmentation all derive from it
  c.num_train_steps = 0
  c.batch_size = 0  # global batch, split evenly over all devices of all hosts
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 0
  c.log_every_steps = 50
  c.keep_checkpoints = 3  # Orbax keeps this many most recent checkpoints
  # Network compute dtype (lle.precision): "bfloat16" computes in bf16 with float32 parameters, optimizer,
  # losses and metrics (for accelerators); "float32" is what the papers trained with.
  c.dtype = "float32"
  # How the networks' and losses' layers compute (lle.nn.layers.LAYER_FORMS), the same function either way:
  # "cpu", exact re-expressions measured faster on XLA's CPU backend (README "Speed"); "plain", XLA's own
  # convolution, pooling and reduction ops (cuDNN on GPUs); "auto", "cpu" on the CPU backend and "plain"
  # on GPUs and TPUs. Not in the papers: a speed choice. results.json records the forms used.
  c.layer_forms = "auto"

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = config_dict.placeholder(str)  # TFDS data dir; None: $TFDS_DATA_DIR or ~/tensorflow_datasets
  c.data.train_split = "train"
  c.data.eval_split = "test"
  c.data.eval_limit = config_dict.placeholder(int)  # score only the first N held-out images (None: all)
  # grain worker processes: 0 reads with threads in the main process; -1 picks by machine
  # (pipeline.worker_count: none on a CPU-only host, whose cores the train step needs, else cores - 2,
  # at most 16). Measured on a 2-core CPU: 2 workers slowed 4 of the 5 demo pipelines.
  c.data.worker_count = -1
  c.data.read_threads = 2  # threads per process that read and augment examples
  c.data.prefetch = 4
  # Decoded training examples kept in memory per process (pipeline.CachedSource), in MB; 0: none. Reading
  # a stored photo costs more than cropping it: a data set that fits is read from disk once.
  c.data.cache_mb = 0

  c.eval = ml_collections.ConfigDict()
  c.eval.num_images_to_save = 3  # input | output | target grids written at each evaluation
  # Held-out images per model call, spread over the devices (None: one per device). Not in the papers.
  c.eval.batch_size = config_dict.placeholder(int)
  # Images larger than this (plus the method's halo) are evaluated window by window (lle.tiling): the
  # same scores in bounded memory. Not in the papers; None evaluates every image in one pass.
  c.eval.tile_size = 1024
  # Scoring conventions, written into results.json ("conventions"); each method's config sets them as its
  # paper (or official code) scored. quantize_8bit: score every system's output as the 8-bit image it
  # would have been saved as (LDR outputs only); quantize_rounding: "round" (to nearest) or "floor" (what
  # numpy's astype('uint8') does to x * 255).
  c.eval.quantize_8bit = False
  c.eval.quantize_rounding = "round"
  # psnr, ssim, mse, ms_ssim: "rgb" (all channels; SSIM per channel, averaged) or "y" (BT.601 luma as
  # MATLAB's rgb2ycbcr, the super-resolution convention).
  c.eval.color = "rgb"
  # ssim: "gaussian" (Wang et al. 2004 ssim_index.m: 11x11 Gaussian, sigma 1.5, valid windows) or
  # "matlab" (Wang's 2009 ssim.m: box-filtered and subsampled by round(min(H, W) / 256) first).
  c.eval.ssim_window = "gaussian"
  # hdrvdp2: the HDR-VDP-2 release whose quality score is reported (hdrvdp2_q). "2.2.2" (29 March 2020, the
  # last 2.x; its ChangeLog: "the predictions of this version should be the same as 2.2.1", whose entry
  # reads "Q is now scaled differently: 100 for the best quality and gets lower. Q_MOS has been removed
  # as unreliable. Use 'Q' instead."): Q on 0-100, higher is better. "2.2.0" (19 October 2014): its log Q
  # (lower is better) and its 0-100 Q_MOS (hdrvdp2_qmos), for comparison with numbers made with it.
  # P_det and C_max are the same in both.
  c.eval.hdrvdp_release = "2.2.2"
  # psnr (and ms_ssim_dped): "image" (the mean of per-image scores) or "batch" (DPED's train_model.py: the
  # held-out images in order, cut into groups of pooling_batch_size, PSNR of each group's pooled MSE and
  # ms_ssim_dped of each whole group, averaged over groups; a last partial group is left out, as DPED's).
  c.eval.psnr_pooling = "image"
  c.eval.pooling_batch_size = 50  # DPED's batch_size; used by psnr_pooling="batch" only
  # Clip outputs to [0, 1] before scoring, as a saved image is (False: score the network's float output
  # as it is, as DPED's train_model.py does with its tanh * 0.58 + 0.5 in [-0.08, 1.08]).
  c.eval.clip = True
  # fsitm: its reference (an HDR image in FSITM's definition) "linear": decoded to linear light as the
  # target's encoding says; "as_is": as the data set holds it (an 8-bit target image as its file).
  c.eval.fsitm_reference = "linear"
  # Sets without references scored at each evaluation (results.json "no_reference"): TFDS names such as
  # "lowlight_nr/lime" (python -m lle.data.build lowlight_nr/lime --manual_dir=DIR) or "folder:PATH";
  # scored with these metrics (no target needed).
  c.eval.no_reference = ()
  c.eval.no_reference_metrics = ("niqe",)
  # Training-free baselines scored beside the model (lle.baselines; the method declares which apply, its
  # config sets their parameters here). `include`: the names to score, () for all the method declares
  # (the host-side ones, CLAHE and BIMEF, take about a second per megapixel).
  c.eval.baselines = ml_collections.ConfigDict()
  c.eval.baselines.include = ()
  # The paper's headline columns: the final table's last line says whether the model leads each of them
  # and, where it trails, `headline_note` (a config's measured reason) says why. () : no such line.
  c.eval.headline_metrics = ()
  c.eval.headline_note = ""

  c.wandb = ml_collections.ConfigDict()
  c.wandb.enabled = True
  c.wandb.project = "lle"
  c.wandb.entity = ""
  c.wandb.group = ""
  c.wandb.name = ""
  c.wandb.mode = ""  # "" = online if an API key is configured, else offline; or online/offline/disabled
  return c


def width_scaled_init(name: str, paper_width: int, width: int) -> str:
  """A fixed-std kernel initialiser ('normal_<std>' or 'truncated_normal_<std>') rescaled for a network
  narrowed from `paper_width` to `width` features, so that each layer keeps the gain the paper's init gives
  it at the paper's widths: a conv's output std is std * sqrt(k * k * fan_in channels) times its input's,
  so std grows by sqrt(paper_width / width). (A fixed std at a quarter of the width halves every layer's
  gain, and a signal through a dozen such layers starts 2^12 times smaller than in the paper's network.)"""
  family, _, std = name.rpartition("_")
  if family not in ("normal", "truncated_normal"):
    raise ValueError(f"width_scaled_init: {name!r} is not 'normal_<std>' or 'truncated_normal_<std>'")
  return f"{family}_{float(std) * (paper_width / width) ** 0.5:.4g}"


def low_light_baselines(c):
  """`config.eval.baselines` of the low-light methods (lle.baselines.low_light): GLADNet, NEID, tmgan, IQE."""
  b = c.eval.baselines
  b.exposure_gamma = ml_collections.ConfigDict()
  # Reinhard et al. 2002 sec. 3.1: a scene of normal key has its log-average luminance mapped to middle
  # grey, 0.18 ("key value"); here one gain per image does that in linear light.
  b.exposure_gamma.key = 0.18
  # Not from a paper: the power-law display gamma 2.2 (sRGB's piecewise curve is close to it, IEC 61966-2-1).
  b.exposure_gamma.gamma = 2.2
  b.clahe = ml_collections.ConfigDict()
  b.clahe.clip_limit = 0.01  # scikit-image `exposure.equalize_adapthist` default (Zuiderveld 1994's CLAHE)
  b.clahe.kernel_size = config_dict.placeholder(int)  # None: scikit-image's default, 1/8 of height and width
  b.clahe.nbins = 256  # scikit-image default
  b.msr = ml_collections.ConfigDict()
  # Jobson, Rahman and Woodell 1997 (IEEE TIP 6(7)) sec. III: three Gaussian surrounds F = K exp(-r^2 / c^2)
  # of scales c = 15, 80 and 250 pixels, equally weighted, in the log domain (NEID Table 1's "MSR" [15]).
  b.msr.scales = (15.0, 80.0, 250.0)
  # Not in Jobson et al.: the MSR output is in log units with no fixed range. Each channel is stretched by
  # Limare et al. 2011's "simplest color balance" with 1% of the pixels saturated at each end, the final
  # step of Petro, Sbert and Morel's MSR (IPOL 2014); image-only, unlike a gain fitted to the target.
  b.msr.saturated = 0.01
  b.bimef = ml_collections.ConfigDict()  # Ying, Li and Gao 2017; every value is BIMEF.m's (github baidut/BIMEF)
  b.bimef.mu = 0.5  # enhancement ratio: fusion weight W = t^mu
  b.bimef.a = -0.3293  # camera response model: the parameters the paper fitted to real cameras
  b.bimef.b = 1.1258
  b.bimef.lam = 0.5  # tsmooth lambda: smoothness of the illumination map
  b.bimef.sigma = 5  # tsmooth sigma: the box window of the texture weights
  b.bimef.sharpness = 0.001  # tsmooth sharpness (computeTextureWeights' epsilon)


def tiny_run(c, data_name: str):
  """The run-level part of every method's `tiny` variant: a few steps on a few pixels of the embedded
  demo data, evaluated on one held-out image (tests only)."""
  c.data.name = data_name
  c.num_train_steps = 4
  c.eval_every_steps = 4
  c.checkpoint_every_steps = 2
  c.log_every_steps = 1
  c.data.crop_size = 32
  c.data.eval_limit = 1
  c.data.read_threads = 1


# Variants that set a run's size rather than its method; `config.scale` names the one applied ("full":
# none, the paper's sizes). Tables never put runs of different scales in one cell (lle.report).
SCALES = ("demo", "tiny")


def apply_variants(config, arg: str | None, variants: dict[str, Callable], *, default: str | None = None,
                   exclusive: tuple = ()):
  """Applies the comma-separated variants named in `arg`, in order, e.g. 'demo,nodmse', and records them:
  `config.variants` (the names, with `default` first when `arg` names none of the `exclusive` model
  variants, so that a run of the default model says so) and `config.scale` ("demo", "tiny" or "full").
  Both land in results.json; `lle.report` selects table columns on them."""
  names = [n for n in (arg or "").split(",") if n]
  for name in names:
    if name not in variants:
      raise ValueError(f"unknown config variant {name!r}; expected one of {sorted(variants)}")
  models = [n for n in names if n in exclusive]
  if len(models) > 1:
    raise ValueError(f"config variants {models} each choose the model; name at most one of {list(exclusive)}")
  if default is not None and not models:
    names = [default] + names
  scales = [n for n in names if n in SCALES]
  if len(scales) > 1:
    raise ValueError(f"config variants {scales} each set the run's size; name at most one")
  for name in names:
    variants[name](config)
  config.variants = tuple(names)
  config.scale = scales[0] if scales else "full"
  return config


# The repository this package lives in (launch.sh installs it editable): configs/ sits beside lle/.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(spec: str) -> str:
  """`path[:variants]`, with a relative path that does not exist from the working directory taken from
  lle's repository instead (`configs/itmn.py` for a W&B agent started in another folder)."""
  path, colon, variants = spec.partition(":")
  if not os.path.isabs(path) and not os.path.exists(path):
    if not os.path.isfile(os.path.join(REPO_ROOT, path)):
      raise FileNotFoundError(f"config file {path!r} is neither in {os.getcwd()} nor in lle's {REPO_ROOT}")
    path = os.path.join(REPO_ROOT, path)
  return path + colon + variants


def with_variants(spec: str, variants: str) -> str:
  """`path:variants,own` for `spec` = `path[:own]`: `variants` (a size such as demo) applied first, then the
  spec's own (an ablation keeps what it changes: demo sets iTMN's alpha, nodmse zeroes it)."""
  path, _, own = spec.partition(":")
  names = ",".join(v for v in (variants, own) if v)
  return f"{path}:{names}" if names else path


def resolve_config_args(argv: list[str]) -> list[str]:
  """Command-line arguments with `--config=SPEC` resolved (`resolve`) and merged with `--variants=V`
  (`with_variants`): a W&B sweep runs at demo size with `--variants=demo` beside its swept `--config`."""
  variants = None
  for i, arg in enumerate(argv):
    if arg.startswith("--variants="):
      variants = arg.split("=", 1)[1]
    elif arg == "--variants" and i + 1 < len(argv):
      variants = argv[i + 1]
  if variants and not any(a.startswith("--config=") for a in argv):
    raise ValueError(f"--variants={variants} needs --config=FILE")
  out = []
  for arg in argv:
    if arg.startswith("--config="):
      spec = resolve(arg[len("--config="):])
      arg = "--config=" + (with_variants(spec, variants) if variants else spec)
    out.append(arg)
  return out


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:variant,...]` the way `--config=` does (unlocked)."""
  import importlib.util
  path, _, arg = resolve(spec).partition(":")
  module_spec = importlib.util.spec_from_file_location("_lle_config_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _get(config, key: str):
  for part in key.split("."):
    if not hasattr(config, "get") or part not in config:
      return _ABSENT
    config = config[part]
  return config


_ABSENT = object()
# Counts and sizes (where a config has them): each must be a positive integer, or None where the field is a
# placeholder whose None means "not set" (eval.batch_size, eval.tile_size, data.eval_limit).
POSITIVE = ("batch_size", "eval_every_steps", "checkpoint_every_steps", "log_every_steps", "keep_checkpoints",
            "data.crop_size", "data.read_threads", "data.eval_limit", "data.input_scale", "data.patches_per_image",
            "eval.batch_size", "eval.tile_size")
NON_NEGATIVE = ("num_train_steps", "data.prefetch", "data.cache_mb", "eval.num_images_to_save")


def check(config, *, training: bool) -> None:
  """Stops with `lle.cli.UsageError` naming a count or size that cannot work, before anything is written:
  `batch_size=0` would divide by zero, `log_every_steps=0` too, `num_train_steps=0` would train nothing."""
  from lle import cli
  for keys, least in ((POSITIVE, 1), (NON_NEGATIVE, 0)):
    for key in keys:
      value = _get(config, key)
      if value is _ABSENT or value is None:
        continue
      if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least:
        raise cli.UsageError(f"config.{key}={value!r}: must be {'positive' if least else 'zero or more'}")
  workers = _get(config, "data.worker_count")
  if workers is not _ABSENT and (not isinstance(workers, int) or workers < -1):
    raise cli.UsageError(f"config.data.worker_count={workers!r}: must be -1 (chosen by machine), 0 or more")
  if training and config.num_train_steps == 0:
    raise cli.UsageError("config.num_train_steps=0: nothing to train (set --config.num_train_steps=N; an "
                         "evaluation-only config is for ./launch.sh eval)")


def _as_tuples(value):
  """JSON arrays back to the tuples that configs hold."""
  return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def _merge(config: ml_collections.ConfigDict, values: dict) -> None:
  for key, value in values.items():
    if isinstance(value, dict):
      if not isinstance(config.get(key), ml_collections.ConfigDict):
        config[key] = ml_collections.ConfigDict()
      _merge(config[key], value)
      continue
    try:
      config[key] = _as_tuples(value)
    except TypeError:  # a field whose type the saved value does not have (None in an int field, ...)
      with config.ignore_type():
        config[key] = _as_tuples(value)


def from_json(saved: dict) -> ml_collections.ConfigDict:
  """The config a run saved (its config.json) as a ConfigDict: every saved value, sequences as tuples,
  over the defaults of the method's config file, so that a field added to lle since the run was trained
  reads as its default."""
  path = os.path.join(REPO_ROOT, "configs", f"{saved.get('method')}.py")
  config = load(path) if os.path.exists(path) else ml_collections.ConfigDict()
  _merge(config, saved)
  return config

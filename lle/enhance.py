"""Runs a trained model on your own photos: any size, in bounded memory.

  python -m lle.enhance --workdir=runs/gladnet --input=photos/ --output=enhanced/ \
      [--checkpoint_step=N] [--tile=512] [--batch=N] [--config=configs/gladnet.py:demo]
  ./launch.sh enhance ...   (the same)

The run's own config.json says which model it is; `--config` is needed only for a folder without one,
and one that differs from it in a field that changes the model is refused, naming the field. Nothing in
the run folder is created or renamed.

Inputs: one file or a folder (not recursive) of 8/16-bit PNG, TIFF or JPEG, gray or colour (EXIF
orientation applied, alpha dropped). Each output keeps its input's name with a new suffix:
  * low-light methods (GLADNet, NEID): `NAME.png`, 8-bit, or 16-bit for a 16-bit input;
  * iTMN (HDR output): `NAME.hdr`, Radiance RGBE in cd/m^2, and `NAME.png`, the 16-bit SMPTE ST 2084
    (PQ) code values the network predicts.
NEID sees the photo bicubic-downsampled by `config.data.input_scale`, as in its evaluation (sec. 3.3),
so the output has the photo's size; `--super_resolve` feeds the photo itself and writes the 2x output.

Large images run window by window (`lle.tiling`, `--tile` pixels per window core, `--batch` windows per
call, spread over all devices) with the same result as one pass. Outputs are written to a temporary
file and renamed, so a stopped run leaves no half-written image; an output never replaces an input
photo (--output is then refused before the model loads). A file that cannot be read (or a link to a
missing file) is reported by name and skipped; the others are processed, and the exit status is 1 if
any was skipped. Sub-folders of --input are not read, and counted.
"""
import os
import sys
import tempfile

import numpy as np
from absl import app, flags, logging

from lle import cli

SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
FLAGS = flags.FLAGS


def _define_flags():
  """The command line's flags: those of `lle.main` (--config, --workdir, --checkpoint_step) and these.
  Defined only when run as a program, so that importing this module defines no flags."""
  from lle import main  # noqa: F401  (defines --config, --workdir, --checkpoint_step)
  flags.DEFINE_string("input", None, "An image file or a folder of images (PNG, TIFF, JPEG).")
  flags.DEFINE_string("output", None, "Folder for the enhanced images (created if missing).")
  flags.DEFINE_integer("tile", 512, "Core size of a window in model-input pixels (rounded to the size multiple).")
  flags.DEFINE_integer("batch", None, "Windows per call (default: the number of devices).")
  flags.DEFINE_bool("super_resolve", False, "NEID: feed the photo at its own size and write the 2x output.")


class UnreadableImage(ValueError):
  """A file that cannot be decoded as an 8/16-bit image; the message names it."""


def read_photo(path) -> np.ndarray:
  """RGB [H, W, 3] uint8 or uint16 as stored, EXIF orientation applied; `UnreadableImage` naming the file."""
  import cv2
  if os.path.islink(path) and not os.path.exists(path):
    raise UnreadableImage(f"{path}: a link to {os.readlink(path)}, which does not exist")
  try:
    data = np.fromfile(path, np.uint8)
  except OSError as e:
    raise UnreadableImage(f"{path}: cannot read the file ({e})") from e
  if data.size == 0:
    raise UnreadableImage(f"{path}: empty file")
  # IMREAD_COLOR applies the EXIF orientation and makes gray images RGB; ANYDEPTH keeps 16 bits.
  image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
  if image is None:
    raise UnreadableImage(f"{path}: not a readable PNG, TIFF or JPEG image (corrupt or truncated?)")
  if image.dtype not in (np.uint8, np.uint16):
    raise UnreadableImage(f"{path}: expected 8- or 16-bit samples, got {image.dtype}")
  return np.ascontiguousarray(image[..., ::-1])


def _is_photo_entry(folder, name) -> bool:
  """A file with an image suffix, or a link with one whose target is missing (reported when read)."""
  path = os.path.join(folder, name)
  return (name.lower().endswith(SUFFIXES) and not name.startswith(".")
          and (os.path.isfile(path) or (os.path.islink(path) and not os.path.exists(path))))


def list_inputs(path) -> list[str]:
  """The image files named by --input, sorted; an error names a missing path or an empty folder."""
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise FileNotFoundError(f"--input {path} is neither a file nor a folder")
  files = sorted(os.path.join(path, f) for f in os.listdir(path) if _is_photo_entry(path, f))
  if not files:
    raise FileNotFoundError(f"--input {path} holds no {', '.join(SUFFIXES)} files")
  return files


def subfolders(path) -> list[str]:
  """The sub-folders of an --input folder: not read (the folder is not read recursively), but counted."""
  if not os.path.isdir(path):
    return []
  return sorted(f for f in os.listdir(path) if os.path.isdir(os.path.join(path, f)) and not f.startswith("."))


def output_names(files, hdr: bool) -> dict[str, list[str]]:
  """input file -> output file names (the input's stem + the output suffixes); two inputs with one
  stem would overwrite each other, so they stop the run before anything is written."""
  suffixes = [".hdr", ".png"] if hdr else [".png"]
  by_stem = {}
  for f in files:
    stem = os.path.splitext(os.path.basename(f))[0]
    if stem in by_stem:
      raise ValueError(f"{by_stem[stem]} and {f} would both be written as {stem}{suffixes[-1]}; rename one")
    by_stem[stem] = f
  return {f: [stem + s for s in suffixes] for stem, f in by_stem.items()}


def check_outputs(files, names: dict[str, list[str]], input_path, output_dir) -> None:
  """Stops before anything is written when an output would be written over an input photo: --output is
  the --input folder, or an output's path is one of the input files (the same name, or a link to it)."""
  if os.path.isdir(input_path) and os.path.isdir(output_dir) and os.path.samefile(input_path, output_dir):
    raise ValueError(f"--output {output_dir} is the --input folder: the enhanced photos would be written over "
                     "(or beside) the photos they come from; choose another --output folder")
  inputs = {}
  for f in files:
    if os.path.exists(f):
      st = os.stat(f)
      inputs[(st.st_dev, st.st_ino)] = f
  for f in files:
    for name in names[f]:
      target = os.path.join(output_dir, name)
      if os.path.exists(target):
        st = os.stat(target)
        if (st.st_dev, st.st_ino) in inputs:
          raise ValueError(f"--output {output_dir}: {name} would be written over the input photo "
                           f"{inputs[(st.st_dev, st.st_ino)]}; choose another --output folder")


def write_atomic(path: str, image: np.ndarray) -> None:
  """Encodes with OpenCV (RGB in, format from the suffix) into a temporary file, then renames it."""
  import cv2
  suffix = os.path.splitext(path)[1]
  ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]))
  if not ok:
    raise OSError(f"OpenCV could not encode {path}")
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=f".{os.path.basename(path)}.", suffix=suffix)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(encoded.tobytes())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; outputs get the usual permissions
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def load_state(config, workdir, step=None, *, mesh=None):
  """(method, state, step) of the run in `workdir` (latest checkpoint, or `step`), replicated over `mesh`,
  read only. `config` must agree with the run's own (see `lle.train.run_config`); None uses it."""
  from lle import train
  _, method, state, step = train.load_checkpoint(config, workdir, step, mesh=mesh)
  return method, state, step


class Enhancer:
  """Photo (uint8 / uint16 [H, W, 3]) -> what is written, for one trained model."""

  def __init__(self, config, method, state, *, tile=512, batch=None, super_resolve=False):
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from lle import tiling, train
    self.config = config
    self.hdr = config.data.target_encoding == "pq"
    self.downsample = 1 if super_resolve else self._input_scale(config)
    mesh = train.make_mesh()
    batch = batch or mesh.size
    sharding = NamedSharding(mesh, P("data")) if batch % mesh.size == 0 and mesh.size > 1 else None
    self.predictor = tiling.TiledPredictor(method, state, tile=tile, batch=batch, sharding=sharding)

  @staticmethod
  def _input_scale(config) -> int:
    recipe = config.data.get("recipe", "crop_flip")
    return config.data.input_scale if recipe == "neid" else 1

  def __call__(self, photo: np.ndarray) -> dict[str, np.ndarray]:
    """{suffix: image to write}."""
    from lle import color
    from lle.data import pipeline
    h, w = photo.shape[:2]
    x = photo
    if self.downsample > 1:
      x = pipeline.bicubic_downsample(photo, self.downsample)
    if self.hdr:
      code = np.clip(self.predictor(x), 0.0, 1.0)
      nits = np.asarray(color.pq_decode(code), np.float32)
      return {".hdr": nits, ".png": np.round(code * 65535.0).astype(np.uint16)}
    peak = 65535.0 if photo.dtype == np.uint16 else 255.0
    dtype = np.uint16 if photo.dtype == np.uint16 else np.uint8
    out = self.predictor(x, out_dtype=dtype, convert=lambda y: np.round(np.clip(y, 0.0, 1.0) * peak).astype(dtype))
    if self.downsample > 1:
      out = out[:h, :w]  # an odd side was rounded up by the downsampling
    return {".png": out}


def enhance_files(enhancer: Enhancer, files, output_dir) -> tuple[list[str], list[str]]:
  """Enhances every file into `output_dir`; returns (written files, skip messages)."""
  from tqdm import tqdm
  os.makedirs(output_dir, exist_ok=True)
  names = output_names(files, enhancer.hdr)
  written, skipped = [], []
  bar = tqdm(files, unit="image", dynamic_ncols=True, disable=None)  # None: no bar unless on a terminal
  for path in bar:
    bar.set_postfix_str(os.path.basename(path))
    try:
      photo = read_photo(path)
    except UnreadableImage as e:
      skipped.append(str(e))
      tqdm.write(f"skipped {e}", file=sys.stderr)
      continue
    outputs = enhancer(photo)
    for name in names[path]:
      target = os.path.join(output_dir, name)
      write_atomic(target, outputs[os.path.splitext(name)[1]])
      written.append(target)
  bar.close()
  return written, skipped


@cli.reports_errors
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for name in ("workdir", "input", "output"):
    if getattr(FLAGS, name) is None:
      raise app.UsageError(f"--{name} is required")
  if not any(a.startswith(("--verbosity", "-v")) for a in sys.argv):
    logging.set_verbosity(logging.WARNING)
  from lle import train
  # Everything the command line can get wrong is checked before the model is loaded.
  config = train.run_config(FLAGS.workdir, FLAGS.config)
  files = list_inputs(FLAGS.input)
  cli.check_output_folder(FLAGS.output, "--output")
  names = output_names(files, config.data.target_encoding == "pq")  # two inputs with one output name
  check_outputs(files, names, FLAGS.input, FLAGS.output)
  train.setup_compilation_cache()  # a folder of photos of one size compiles once across invocations
  method, state, step = load_state(config, FLAGS.workdir, FLAGS.checkpoint_step)
  enhancer = Enhancer(config, method, state, tile=FLAGS.tile, batch=FLAGS.batch, super_resolve=FLAGS.super_resolve)
  folders = subfolders(FLAGS.input)
  print(f"{config.method} step {step}: {len(files)} image(s) -> {FLAGS.output}"
        + (f" ({len(folders)} sub-folder(s) of --input not read: {', '.join(folders[:5])})" if folders else ""))
  written, skipped = enhance_files(enhancer, files, FLAGS.output)
  print(f"wrote {len(written)} file(s); skipped {len(skipped)}"
        + (f"; {len(folders)} sub-folder(s) not read" if folders else ""))
  for message in skipped:
    print(f"  skipped {message}", file=sys.stderr)
  if skipped:
    sys.exit(1)


if __name__ == "__main__":
  _define_flags()
  from lle import main as lle_main
  app.run(main, flags_parser=lle_main.parse_flags)

"""`lle.enhance`: photos of any size and kind through a saved checkpoint, tiled as one pass, HDR outputs,
bad files skipped by name, and the command line end to end."""
import json
import os
import subprocess
import sys

import cv2
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from lle import color, enhance, methods, tiling, train
from tests.conftest import REPO, load_config
from tests.test_tiling import _photo, _random_state


def _save_run(config, workdir, state):
  """A run folder as the trainer leaves it: config.json and one checkpoint."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "config.json").write_text(json.dumps(config.to_dict(), default=str))
  manager = train.checkpoint_manager(workdir, config)
  manager.save(7, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  manager.close()


def _run(spec, tmp_path):
  config = load_config(spec)
  method, state = _random_state(config)
  mesh = train.make_mesh()
  _, abstract = train.init_state(method, config, mesh)
  state = jax.device_put(state, jax.tree.map(lambda a: a.sharding, abstract))
  _save_run(config, tmp_path / "run", state)
  return config, method, state


def test_load_state_restores_the_checkpoint_and_explains_a_missing_one(tmp_path):
  config, _, state = _run("configs/gladnet.py:tiny", tmp_path)
  _, restored, step = enhance.load_state(config, tmp_path / "run")
  assert step == 7
  for a, b in zip(jax.tree.leaves(state["net"].params), jax.tree.leaves(restored["net"].params)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(FileNotFoundError, match="train one first.*launch.sh train --config=configs/gladnet.py"):
    enhance.load_state(config, tmp_path / "empty")
  with pytest.raises(ValueError, match="holds a 'gladnet' run, but --config is for 'neid'"):
    enhance.load_state(load_config("configs/neid.py:tiny"), tmp_path / "run")


def _save_step(config, workdir, state, step):
  manager = train.checkpoint_manager(workdir, config)
  manager.save(step, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  manager.close()


def test_reading_a_run_creates_and_renames_nothing(tmp_path):
  config, _, state = _run("configs/gladnet.py:tiny", tmp_path)  # checkpoint 7
  run = tmp_path / "run"
  with pytest.raises(FileNotFoundError, match="no run in .*typo"):  # a mistyped --workdir
    enhance.load_state(config, tmp_path / "typo")
  with pytest.raises(FileNotFoundError, match="no run in .*typo"):
    train.evaluate_checkpoint(config, tmp_path / "typo")
  assert not (tmp_path / "typo").exists()
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no checkpoint in .*empty.*train one first"):
    enhance.load_state(config, tmp_path / "empty")
  assert os.listdir(tmp_path / "empty") == []
  _save_step(config, run, state, 9)
  for f in (run / "checkpoints" / "9").rglob("*"):  # damaged: every file cut to a third
    if f.is_file():
      f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 3])
  before = sorted(p.relative_to(run) for p in run.rglob("*"))
  _, restored, step = enhance.load_state(config, run)  # falls back past step 9, without renaming it
  assert step == 7 and sorted(p.relative_to(run) for p in run.rglob("*")) == before
  for a, b in zip(jax.tree.leaves(state["net"].params), jax.tree.leaves(restored["net"].params)):
    np.testing.assert_array_equal(a, b)


def test_the_runs_own_config_is_used_and_another_is_refused(tmp_path):
  config, _, state = _run("configs/gladnet.py:tiny", tmp_path)
  run = tmp_path / "run"
  _, restored, step = enhance.load_state(None, run)  # no --config: the run's config.json
  assert step == 7
  np.testing.assert_array_equal(jax.tree.leaves(state["net"].params)[0], jax.tree.leaves(restored["net"].params)[0])
  coarser = load_config("configs/gladnet.py:tiny")
  coarser.model.global_size = 32  # the same weights, another model: outputs would be silently wrong
  with pytest.raises(train.ConfigMismatchError, match=r"fields that change the model: model.global_size: 16 -> 32\. "
                                                      r"Leave out --config"):
    enhance.load_state(coarser, run)
  with pytest.raises(train.ConfigMismatchError, match="model.global_size: 16 -> 32"):
    train.evaluate_checkpoint(coarser, run)
  other_data = load_config("configs/gladnet.py:tiny")
  other_data.data.name = "lol/v1"  # scoring the model on other data is an evaluation's choice
  assert train.run_config(run, other_data).data.name == "lol/v1"
  # A folder without config.json (converted weights) needs --config; one of another size is named as a
  # config mismatch, not as an unreadable checkpoint.
  (run / "config.json").unlink()
  with pytest.raises(ValueError, match="has no config.json: name the config"):
    enhance.load_state(None, run)
  wider = load_config("configs/gladnet.py:tiny")
  wider.model.global_features = 8
  with pytest.raises(train.ConfigMismatchError, match=r"the config does not fit checkpoint .*7: net/params/Conv_0/bias "
                                                      r"is \(4,\) there, \(8,\) in this config"):
    enhance.load_state(wider, run)


def _enhance(*args):
  return subprocess.run([sys.executable, "-m", "lle.enhance", *args], cwd=REPO, capture_output=True, text=True,
                        timeout=300)


def test_command_line_refuses_before_loading_the_model(tmp_path):
  """Each refusal is one `error:` line, and nothing is written: an output over an input photo, an
  --output that is a file, a --config that differs from the run's."""
  _run("configs/gladnet.py:tiny", tmp_path)
  photos = tmp_path / "photos"
  photo = _write(photos / "a.png", _photo(20, 24))
  original = (photos / "a.png").read_bytes()
  (tmp_path / "afile").write_text("x")
  run = (f"--workdir={tmp_path / 'run'}", "--config=configs/gladnet.py:tiny")  # the run's own config: accepted
  cases = {
      (f"--input={photos}", f"--output={photos}"): f"error: --output {photos} is the --input folder",
      (f"--input={photo}", f"--output={photos}"): f"error: --output {photos}: a.png would be written over the input "
                                                  f"photo {photo}",
      (f"--input={photos}", f"--output={tmp_path / 'afile'}"): f"error: --output {tmp_path / 'afile'} is a file",
      (f"--input={photos}", f"--output={tmp_path / 'out'}", "--config.model.global_size=32"):
          "error: --config differs from the config",
  }
  for args, message in cases.items():
    out = _enhance(*run, *args)
    assert out.returncode in (1, 2) and out.stderr.count("\n") == 1, (args, out.returncode, out.stderr[-3000:])
    assert out.stderr.startswith(message), (args, out.stderr)
    if "global_size" in args[-1]:
      assert out.returncode == 2 and "model.global_size: 16 -> 32" in out.stderr
  assert (photos / "a.png").read_bytes() == original and os.listdir(photos) == ["a.png"]
  assert not (tmp_path / "out").exists()


def test_neid_output_has_the_photos_size_and_super_resolve_doubles_it(tmp_path):
  config = load_config("configs/neid.py:tiny")
  method, state = _random_state(config)
  photo = _photo(75, 103)  # odd: the downsampled input rounds up, the output is cropped back
  out = enhance.Enhancer(config, method, state, tile=16)(photo)[".png"]
  assert out.shape == (75, 103, 3) and out.dtype == np.uint8
  from lle.data import pipeline
  x = pipeline.bicubic_downsample(photo, 2)
  one_pass = np.asarray(method.predict(state, tiling.pad_to_multiple(x, method.size_multiple)[None]))[0]
  want = np.round(np.clip(one_pass[:75, :103], 0, 1) * 255)
  assert np.abs(out.astype(float) - want).max() <= 1  # tiled == one pass, to one 8-bit level
  big = enhance.Enhancer(config, method, state, tile=16, super_resolve=True)(photo)[".png"]
  assert big.shape == (150, 206, 3)


def test_itmn_writes_radiance_hdr_in_nits_and_16_bit_pq(tmp_path):
  config = load_config("configs/itmn.py:tiny")
  method, state = _random_state(config)
  enhancer = enhance.Enhancer(config, method, state, tile=16)
  photo = _photo(40, 52)
  outputs = enhancer(photo)
  code = tiling.TiledPredictor(method, state, tile=16)(photo)
  assert outputs[".png"].dtype == np.uint16 and outputs[".hdr"].dtype == np.float32
  np.testing.assert_array_equal(outputs[".png"], np.round(np.clip(code, 0, 1) * 65535).astype(np.uint16))
  np.testing.assert_allclose(outputs[".hdr"], np.asarray(color.pq_decode(np.clip(code, 0, 1))), rtol=1e-5)
  written, skipped = enhance.enhance_files(enhancer, [_write(tmp_path / "in" / "scene.png", photo)],
                                           tmp_path / "out")
  assert sorted(os.path.basename(p) for p in written) == ["scene.hdr", "scene.png"] and not skipped
  hdr = cv2.imread(str(tmp_path / "out" / "scene.hdr"), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)[..., ::-1]
  # RGBE: one shared exponent, 8-bit mantissas, truncated: each channel to 1/128 of the pixel's largest.
  peak = outputs[".hdr"].max(-1, keepdims=True)
  assert np.all(np.abs(hdr - outputs[".hdr"]) <= peak / 128 + 1e-6) and float(peak.max()) > 10


def _write(path, rgb):
  path.parent.mkdir(parents=True, exist_ok=True)
  assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
  return str(path)


def test_photo_reading_orientation_depth_and_bad_files(tmp_path):
  photo = _photo(30, 50)
  exif = Image.Exif()
  exif[0x0112] = 6  # EXIF orientation 6: display rotated 90 degrees clockwise
  Image.fromarray(photo).save(tmp_path / "portrait.jpg", exif=exif.tobytes(), quality=95)
  assert enhance.read_photo(tmp_path / "portrait.jpg").shape == (50, 30, 3)
  gray16 = (np.arange(24 * 20, dtype=np.uint16).reshape(24, 20) * 101)
  cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
  read = enhance.read_photo(tmp_path / "gray16.png")
  assert read.dtype == np.uint16 and read.shape == (24, 20, 3)
  np.testing.assert_array_equal(read[..., 1], gray16)
  (tmp_path / "empty.png").write_bytes(b"")
  good = (tmp_path / "portrait.jpg").read_bytes()
  (tmp_path / "cut.jpg").write_bytes(good[:len(good) // 2])
  for name, reason in (("empty.png", "empty file"), ("cut.jpg", "corrupt or truncated")):
    with pytest.raises(enhance.UnreadableImage, match=f"{name}.*{reason}"):
      enhance.read_photo(tmp_path / name)
  (tmp_path / "cut.png").write_bytes(b"x")
  with pytest.raises(ValueError, match="cut.jpg and .*cut.png would both be written as cut.png"):
    enhance.output_names(enhance.list_inputs(str(tmp_path)), hdr=False)


def test_broken_links_are_skipped_by_name_and_sub_folders_counted(tmp_path):
  _write(tmp_path / "a.png", _photo(8, 8))
  (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
  (tmp_path / "holiday").mkdir()
  (tmp_path / "notes.txt").write_text("not a photo")
  files = enhance.list_inputs(str(tmp_path))
  assert [os.path.basename(f) for f in files] == ["a.png", "gone.png"]  # read, and skipped by name
  with pytest.raises(enhance.UnreadableImage, match=r"gone.png: a link to .*nowhere.png, which does not exist"):
    enhance.read_photo(files[1])
  assert enhance.subfolders(str(tmp_path)) == ["holiday"]


def test_command_line_end_to_end(tmp_path):
  """A folder with a rotated JPEG, a 16-bit PNG and a broken file: two outputs, one skip by name."""
  config, method, state = _run("configs/gladnet.py:tiny", tmp_path)
  photos = tmp_path / "photos"
  photos.mkdir()
  photo = _photo(90, 140)
  exif = Image.Exif()
  exif[0x0112] = 8  # rotated 90 degrees counter-clockwise for display
  Image.fromarray(photo).save(photos / "street.jpg", exif=exif.tobytes(), quality=95)
  cv2.imwrite(str(photos / "night.png"), (photo.astype(np.uint16) * 257)[..., ::-1])
  (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  out = subprocess.run([sys.executable, "-m", "lle.enhance", "--config=configs/gladnet.py:tiny",
                        f"--workdir={tmp_path / 'run'}", f"--input={photos}", f"--output={tmp_path / 'out'}",
                        "--tile=32"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1, out.stderr[-3000:]
  assert "broken.png" in out.stderr and "wrote 2 file(s); skipped 1" in out.stdout
  assert sorted(os.listdir(tmp_path / "out")) == ["night.png", "street.png"]  # no temporary files left
  street = cv2.imread(str(tmp_path / "out" / "street.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
  night = cv2.imread(str(tmp_path / "out" / "night.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
  assert street.shape == (140, 90, 3) and street.dtype == np.uint8
  assert night.shape == (90, 140, 3) and night.dtype == np.uint16
  # The 16-bit output is the one-pass prediction of the 16-bit photo, to one 16-bit level.
  x = tiling.to_float(photo.astype(np.uint16) * 257)[None]
  want = np.round(np.clip(np.asarray(method.predict(state, x))[0], 0, 1) * 65535)
  assert np.abs(night.astype(float) - want).max() <= 2
  assert oct(os.stat(tmp_path / "out" / "night.png").st_mode & 0o777) != oct(0o600)


_TWENTY_FOUR_MEGAPIXELS = """
import resource, time
import jax, numpy as np
from lle import config_lib, enhance, methods
config = config_lib.load("configs/gladnet.py:tiny")
method = methods.get(config)
state = jax.jit(method.init)(jax.random.key(0))
photo = np.full((4000, 6000, 3), 40, np.uint8)
photo[::7] = 90
start = time.perf_counter()
out = enhance.Enhancer(config, method, state, tile=1024)(photo)[".png"]
# VmHWM, the peak of this process's own memory (ru_maxrss survives exec: it would report the test
# worker's size at fork time).
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("RESULT", out.shape, out.dtype, time.perf_counter() - start, peak_kb)
"""


def test_a_24_megapixel_photo_in_bounded_memory():
  """6000 x 4000 in its own process (so that its peak memory is its own). One pass would hold the photo in
  float32 (288 MB) and 24 M pixels x (3 + 4 + 8) channels of float32 activations (1.4 GB) on top of
  the runtime; tiled, the peak is the runtime, the 8-bit photo and output, and one window's activations.
  (GLADNet and NEID demo models at 24 MP: benchmarks/bench_enhance.py.)"""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  out = subprocess.run([sys.executable, "-c", _TWENTY_FOUR_MEGAPIXELS], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT"))
  assert "(4000, 6000, 3) uint8" in line
  peak_mb = int(line.split()[-1]) / 1024
  assert peak_mb < 1100, peak_mb

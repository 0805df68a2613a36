import numpy as np
import pytest
import tensorflow_datasets as tfds

from lle import color
from lle.data import build, errors
from lle.data.hdr import builder as hdr_builder
from lle.data.hdr import tonemap
from tests.data import fixtures


def _scene(seed, h=16, w=24):
  """A linear HDR scene with a 1000:1 range (relative units)."""
  rng = np.random.default_rng(seed)
  return (rng.lognormal(0.0, 1.5, (h, w, 3)) * 0.01).astype(np.float32)


def _folder(manual, n=4):
  for i in range(n):
    fixtures.write(manual / "scenes" / f"scene{i}.hdr", _scene(i))
  # 16-bit PNG: linear values x / 65535
  fixtures.write(manual / "png16.png", fixtures.image(99, h=16, w=24, dtype=np.uint16))


def _read(data_dir, name, split):
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_operators_map_to_display_range():
  hdr = _scene(0).astype(np.float64) * 1000
  np.testing.assert_allclose(tonemap.reinhard(hdr), np.asarray(color.reinhard_global(hdr)), atol=1e-6)
  for op in tonemap.OPERATORS:
    out = tonemap.apply(op, hdr)
    assert out.shape == hdr.shape and out.min() >= 0 and out.max() <= 1
    codes = tonemap.to_ldr(op, hdr)
    assert 0.05 * 255 < float(np.median(codes)) < 0.9 * 255  # a visible image, not black or white
  # Drago maps the brightest luminance to exactly 1; exposure maps the log-average to 0.18.
  lum = np.asarray(color.luminance(hdr))
  peak = np.unravel_index(np.argmax(lum), lum.shape)
  assert tonemap.drago(hdr)[peak].max() == pytest.approx(1.0, abs=1e-4)
  assert tonemap.drago(hdr).max(axis=-1).mean() < 0.9
  scaled = hdr * 0.18 / np.exp(np.mean(np.log(1e-6 + lum)))
  unclipped = scaled.max(axis=-1) < 1
  np.testing.assert_allclose(tonemap.exposure(hdr)[unclipped], scaled[unclipped], rtol=1e-5)
  # The same scene at any scale gives the same LDR (every operator normalises by the image).
  for op in tonemap.OPERATORS:
    diff = tonemap.to_ldr(op, hdr).astype(int) - tonemap.to_ldr(op, hdr * 7.0)
    assert np.abs(diff).max() <= 1 and np.mean(diff != 0) < 0.01  # float32 rounding only


def test_camera_saturates_the_drawn_fraction_and_applies_the_response_curve():
  hdr = _scene(1, h=40, w=50).astype(np.float64)
  lum = np.asarray(color.luminance(hdr))
  gain = 1.0 / np.quantile(lum, 0.97)
  codes = tonemap.to_ldr(tonemap.ToneMap("camera", (("clipped", 0.03),)), hdr)
  exposed = np.clip(hdr * gain, 0, 1)
  # f(E) = exp(b (1 - E^a)), a = -0.3293, b = 1.1258: f(1) = 1; 0.18^-0.3293 = 1.758901, so f(0.18) =
  # exp(1.1258 x -0.758901) = 0.425556.
  assert tonemap.camera_response(np.asarray([1.0, 0.18, 0.0])) == pytest.approx([1.0, 0.425556, 0.0], abs=1e-6)
  np.testing.assert_allclose(codes, np.round(tonemap.camera_response(exposed) * 255), atol=1)
  saturated = (lum * gain >= 1)
  assert saturated.mean() == pytest.approx(0.03, abs=0.005) and (codes[saturated].max(axis=-1) == 255).all()


def test_mixture_draws_operators_and_parameters_per_name_from_the_seed():
  picks = [tonemap.choose("mixture", f"img{i}", 0) for i in range(60)]
  assert picks == [tonemap.choose("mixture", f"img{i}", 0) for i in range(60)]  # the same seed: the same
  assert {p.operator for p in picks} == {"reinhard", "drago", "camera"}  # different images: different ones
  assert len({str(p) for p in picks}) == 60  # parameters drawn per image too
  assert picks != [tonemap.choose("mixture", f"img{i}", 1) for i in range(60)]
  for p in picks:  # within the documented ranges
    for key, value in p.params:
      low, high, _ = dict(dict(tonemap.MIXTURE)[p.operator])[key]
      assert low <= value <= high
  hdr = _scene(2).astype(np.float64) * 500
  ldrs = {str(p): tonemap.to_ldr(p, hdr) for p in picks[:6]}
  assert len({l.tobytes() for l in ldrs.values()}) == 6
  assert str(tonemap.choose("reinhard", "x", 0)) == "reinhard"
  with pytest.raises(ValueError, match="unknown tone-mapping operator 'durand'"):
    tonemap.choose("durand", "x", 0)


def test_scalings():
  image = _scene(3)
  peak = hdr_builder.to_nits(image, hdr_builder.make_config("reinhard", peak_nits=4000.0))
  assert np.asarray(color.luminance(peak.astype(np.float64))).max() == pytest.approx(4000, rel=1e-5)
  white = hdr_builder.to_nits(image, hdr_builder.make_config("reinhard", scaling="diffuse_white"))
  lum = np.asarray(color.luminance(white.astype(np.float64)))
  assert np.exp(np.mean(np.log(1e-6 + lum))) == pytest.approx(0.18 * 203, rel=1e-3)
  absolute = hdr_builder.to_nits(image, hdr_builder.make_config("reinhard", scaling="absolute",
                                                                nits_per_unit=100.0))
  np.testing.assert_allclose(absolute, np.minimum(image * 100.0, 10000.0), rtol=1e-6)
  with pytest.raises(ValueError, match="unknown scaling 'max'"):
    hdr_builder.make_config("reinhard", scaling="max")


def test_build_reinhard_pairs(tmp_path):
  _folder(tmp_path / "manual")
  data_dir = str(tmp_path / "tfds")
  builder = build.build("hdr", tmp_path / "manual", data_dir=data_dir, hdr_overrides={"size": 8})
  assert builder.builder_config.name == "reinhard_size8"
  sizes = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
  assert sizes == {"train": 4, "test": 1}  # a seeded 10% of 5 files, at least one
  examples = {**_read(data_dir, "hdr/reinhard_size8", "train"), **_read(data_dir, "hdr/reinhard_size8", "test")}
  assert set(examples) == {"png16", "scenes/scene0", "scenes/scene1", "scenes/scene2", "scenes/scene3"}
  for name, ex in examples.items():
    assert ex["hdr"].dtype == np.float32 and ex["hdr"].shape == (8, 8, 3)
    assert ex["ldr"].dtype == np.uint8 and ex["ldr"].shape == (8, 8, 3)
    assert ex["operator"].decode() == "reinhard"
    assert np.asarray(color.luminance(ex["hdr"].astype(np.float64))).max() == pytest.approx(1000, rel=1e-5)
    np.testing.assert_array_equal(ex["ldr"], tonemap.to_ldr("reinhard", ex["hdr"]))
  # The stored HDR is the file, area-averaged to 8x8 and scaled: compare with a direct computation.
  import cv2
  direct = cv2.resize(_scene(0), (8, 8), interpolation=cv2.INTER_AREA)
  scene0 = examples["scenes/scene0"]["hdr"]
  ratio = scene0 / np.maximum(direct, 1e-9)
  assert np.std(ratio) / np.mean(ratio) < 0.02  # the same image up to one scale (+ RGBE rounding)


def test_train_test_folders_and_mixture(tmp_path):
  for split, ids in (("train", (0, 1, 2)), ("test", (3,))):
    for i in ids:
      fixtures.write(tmp_path / "manual" / split / f"s{i}.hdr", _scene(i))
  data_dir = str(tmp_path / "tfds")
  builder = build.build("hdr/mixture", tmp_path / "manual", data_dir=data_dir, hdr_overrides={"size": 8})
  assert builder.info.splits["train"].num_examples == 3 and builder.info.splits["test"].num_examples == 1
  assert str(builder.info.version) == "2.0.0"
  for name, ex in _read(data_dir, "hdr/mixture_size8", "train").items():
    tone_map = tonemap.choose("mixture", name, 0)
    assert ex["operator"].decode() == str(tone_map)
    np.testing.assert_array_equal(ex["ldr"], tonemap.to_ldr(tone_map, ex["hdr"]))


def test_8bit_and_truncated_files_are_bad(tmp_path):
  _folder(tmp_path / "manual")
  fixtures.write(tmp_path / "manual" / "ldr.png", fixtures.image(5))
  with pytest.raises(errors.BadFileError, match=r"8-bit image: not HDR.*ldr\.png"):
    build.build("hdr", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), hdr_overrides={"size": 8})
  (tmp_path / "manual" / "ldr.png").unlink()
  fixtures.truncate(tmp_path / "manual" / "scenes" / "scene2.hdr")
  with pytest.raises(errors.BadFileError, match=r"unreadable or truncated image: .*scene2\.hdr"):
    build.build("hdr", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), hdr_overrides={"size": 8})
  assert not list((tmp_path / "tfds").rglob("*.array_record*"))
  builder = build.build("hdr", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), skip_bad=True,
                        hdr_overrides={"size": 8})
  assert sum(s.num_examples for s in builder.info.splits.values()) == 4
  assert "skipped 1 bad example(s)" in build.summary(builder) and "scene2.hdr" in build.summary(builder)


def test_exr_without_codec_is_a_clear_error(tmp_path, monkeypatch):
  monkeypatch.setattr(hdr_builder, "_opencv_reads_exr", lambda: False)  # as with the pinned OpenCV wheel
  _folder(tmp_path / "manual")
  (tmp_path / "manual" / "x.exr").write_bytes(b"\x76\x2f\x31\x01" + bytes(60))
  with pytest.raises(hdr_builder.ExrUnsupportedError, match="no OpenEXR codec"):
    build.build("hdr", tmp_path / "manual", data_dir=str(tmp_path / "tfds"), skip_bad=True,
                hdr_overrides={"size": 8})


def test_empty_folder_names_layout(tmp_path):
  (tmp_path / "manual").mkdir()
  with pytest.raises(errors.LayoutError, match=r"(?s)is empty.*markfairchild"):
    build.build("hdr", tmp_path / "manual", data_dir=str(tmp_path / "tfds"))

"""Released TF 1 models: the TensorBundle reader against bytes TensorFlow wrote, then the DPED and GLADNet
converters on checkpoints in the releases' real variable naming, written here by a small writer of the
format (full-size shapes, with optimiser slots and discriminator variables that must be left out)."""
import base64
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import releases, tf_checkpoint, weights
from lle.enhance import load_state
from tests.conftest import load_config
from tests.test_gladnet import _tf_conv_same

# Written by TensorFlow 2.21 (tf.compat.v1.train.Saver, write_meta_graph=False) from a graph in DPED's
# naming: in scope `generator`, W1 [2, 2, 3, 2] = arange / 10, b1 = [0.5, -1.25], two unnamed variables
# (as `_instance_norm` makes them: shift [0.1, 0.2], scale [1.5, 2.5]); outside it an int64
# global_step = 7 and a float64 `dbl` = [[1, 2]].
TF_INDEX = base64.b64decode(
    "AAAGCAEaAggBAAMTZGJsCAISCBICCAESAggCKBA1JVk1XgASEWdlbmVyYXRvci9WYXJpYWJsZQgBEgQSAggCIBAoCDUOmDeWEgIR"
    "XzEIARIEEgIIAiAYKAg1dp0zhQoCHVcxCAESEBICCAISAggCEgIIAxICCAIgIChgNazHyJgKAhJiMQgBEgQSAggCIIABKAg10iYd"
    "DAEKDmxvYmFsX3N0ZXAICRIAIIgBKAg1u9efEQAAAAABAAAAAE0xPMwAAAAAAQAAAADA8qGwAAEDaAC6AQAAAAABAAAAAJw1LTq/"
    "AQjMAQ8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAV/uAiyR1R9s=")
TF_DATA = base64.b64decode(
    "AAAAAAAA8D8AAAAAAAAAQM3MzD3NzEw+AADAPwAAIEAAAAAAzczMPc3MTD6amZk+zczMPgAAAD+amRk/MzMzP83MTD9mZmY/AACA"
    "P83MjD+amZk/ZmamPzMzsz8AAMA/zczMP5qZ2T9mZuY/MzPzPwAAAEBmZgZAzcwMQDMzE0AAAAA/AACgvwcAAAAAAAAA")


def test_reader_reads_what_tensorflow_wrote(tmp_path):
  (tmp_path / "small.index").write_bytes(TF_INDEX)
  (tmp_path / "small.data-00000-of-00001").write_bytes(TF_DATA)
  (tmp_path / "checkpoint").write_text('model_checkpoint_path: "small"\nall_model_checkpoint_paths: "small"\n')
  for source in (tmp_path / "small", tmp_path / "small.index", tmp_path):  # prefix, index file, folder
    tensors = tf_checkpoint.read(str(source))
    assert sorted(tensors) == ["dbl", "generator/Variable", "generator/Variable_1", "generator/W1",
                               "generator/b1", "global_step"]
  np.testing.assert_array_equal(tensors["generator/W1"], np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2) / 10)
  assert tensors["generator/W1"].dtype == np.float32
  np.testing.assert_array_equal(tensors["generator/b1"], [0.5, -1.25])
  np.testing.assert_array_equal(tensors["generator/Variable"], np.float32([0.1, 0.2]))
  np.testing.assert_array_equal(tensors["generator/Variable_1"], [1.5, 2.5])
  assert tensors["global_step"].dtype == np.int64 and tensors["global_step"].shape == () and tensors["global_step"] == 7
  assert tensors["dbl"].dtype == np.float64 and tensors["dbl"].tolist() == [[1.0, 2.0]]


def test_reader_detects_a_damaged_tensor_and_a_missing_file(tmp_path):
  damaged = bytearray(TF_DATA)
  damaged[-12] ^= 0xFF  # inside b1
  (tmp_path / "small.index").write_bytes(TF_INDEX)
  (tmp_path / "small.data-00000-of-00001").write_bytes(bytes(damaged))
  with pytest.raises(tf_checkpoint.CheckpointError, match="'generator/b1' fails its CRC-32C check"):
    tf_checkpoint.read(str(tmp_path / "small"))
  with pytest.raises(FileNotFoundError, match="no TensorFlow checkpoint .*/nothing.index"):
    tf_checkpoint.read(str(tmp_path / "nothing"))
  (tmp_path / "bad.index").write_bytes(b"not a table" * 10)
  with pytest.raises(tf_checkpoint.CheckpointError, match="bad.index: not a TensorFlow checkpoint index"):
    tf_checkpoint.read(str(tmp_path / "bad"))


# --- a writer of the format, for full-size checkpoints ------------------------------------------------

def _varint(n):
  out = bytearray()
  while True:
    out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
    n >>= 7
    if not n:
      return bytes(out)


def _field(number, wire, payload):
  key = _varint(number << 3 | wire)
  return key + (_varint(payload) if wire == 0 else _varint(len(payload)) + payload)


def _block(entries):
  body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
  return body + struct.pack("<II", 0, 1)  # one restart point at 0


def write_bundle(prefix, tensors, *, entries_per_block=5):
  """TensorBundle (V2) files for {name: array}: small blocks so that the index has several."""
  dtypes = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int64): 9}
  data, entries = bytearray(), []
  for name in sorted(tensors):
    array = np.ascontiguousarray(tensors[name])
    raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
    shape = b"".join(_field(2, 2, _field(1, 0, d)) for d in array.shape)
    proto = (_field(1, 0, dtypes[array.dtype]) + _field(2, 2, shape) + _field(4, 0, len(data))
             + _field(5, 0, len(raw)) + _varint(6 << 3 | 5) + struct.pack("<I", tf_checkpoint.masked_crc32c(raw)))
    entries.append((name.encode(), proto))
    data += raw
  header = _field(1, 0, 1) + _field(3, 2, _field(1, 0, 1))
  entries.insert(0, (b"", header))
  table, index = bytearray(), []
  for start in range(0, len(entries), entries_per_block):
    chunk = entries[start:start + entries_per_block]
    block = _block(chunk)
    index.append((chunk[-1][0], _varint(len(table)) + _varint(len(block))))
    table += block + b"\0" * 5
  meta = _block([])
  meta_handle = _varint(len(table)) + _varint(len(meta))
  table += meta + b"\0" * 5
  index_block = _block(index)
  index_handle = _varint(len(table)) + _varint(len(index_block))
  table += index_block + b"\0" * 5
  footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
  with open(f"{prefix}.index", "wb") as f:
    f.write(bytes(table) + footer)
  with open(f"{prefix}.data-00000-of-00001", "wb") as f:
    f.write(bytes(data))


def dped_release(seed=0, num_blocks=4, features=64):
  """DPED's generator variables, real names and shapes, He-scaled so that the output is not flat; plus
  what a training checkpoint also carries (Adam slots, the discriminator's unnamed variables)."""
  rng = np.random.default_rng(seed)
  shapes = [(9, 9, 3, features)] + [(3, 3, features, features)] * (2 * num_blocks + 2) + [(9, 9, features, 3)]
  tensors = {}
  for i, shape in enumerate(shapes, start=1):
    tensors[f"generator/W{i}"] = (rng.standard_normal(shape) * np.sqrt(1.0 / np.prod(shape[:3]))).astype(np.float32)
    tensors[f"generator/b{i}"] = (rng.standard_normal(shape[-1]) * 0.05).astype(np.float32)
  for k in range(2 * num_blocks):
    tensors["generator/Variable" + (f"_{2 * k}" if k else "")] = (rng.standard_normal(features) * 0.1).astype(np.float32)
    tensors[f"generator/Variable_{2 * k + 1}"] = (1 + rng.standard_normal(features) * 0.1).astype(np.float32)
  tensors["generator/W1/Adam"] = np.zeros((9, 9, 3, features), np.float32)
  tensors["discriminator/Variable"] = np.zeros((11, 11, 1, 48), np.float32)
  tensors["beta1_power"] = np.float32(0.9)
  return tensors


def _dped_reference(image, t, num_blocks=4):
  """A float64 numpy transcription of DPED's `resnet` graph on one image."""
  relu = lambda v: np.maximum(v, 0.0)
  conv = lambda x, i: _tf_conv_same(x, t[f"generator/W{i}"].astype(np.float64), t[f"generator/b{i}"], 1)
  norm_vars = iter(range(4 * num_blocks))

  def instance_norm(x):
    k = next(norm_vars)
    shift = t["generator/Variable" + (f"_{k}" if k else "")]
    scale = t[f"generator/Variable_{next(norm_vars)}"]
    mu, var = x.mean((0, 1)), x.var((0, 1))
    return scale * (x - mu) / np.sqrt(var + 1e-3) + shift

  h = relu(conv(image, 1))
  for b in range(num_blocks):
    c = relu(instance_norm(conv(h, 2 + 2 * b)))
    h = relu(instance_norm(conv(c, 3 + 2 * b))) + h
  h = relu(conv(relu(conv(h, 2 * num_blocks + 2)), 2 * num_blocks + 3))
  return np.tanh(conv(h, 2 * num_blocks + 4)) * 0.58 + 0.5


def test_dped_release_converts_into_a_run_that_evaluates_like_the_official_graph(tmp_path):
  tensors = dped_release()
  write_bundle(tmp_path / "iphone_orig", tensors)
  folder = releases.convert("dped", str(tmp_path / "iphone_orig"), out_dir=str(tmp_path / "weights"))
  assert folder.endswith("dped_iphone_orig")
  release = json.loads((tmp_path / "weights" / "dped_iphone_orig" / "release.json").read_text())
  assert len(release["mapping"]) == 24 + 16 and release["mapping"]["generator/Variable_3"] == "gen/norm3/scale"
  assert set(release["left_out"]) == {"generator/W1/Adam", "discriminator/Variable", "beta1_power"}
  config = load_config("configs/iqe.py:release")
  method, state, step = load_state(config, folder)
  assert step == 0
  np.testing.assert_array_equal(np.asarray(state["gen"].params["W7"]["kernel"]), tensors["generator/W7"])
  image = np.random.default_rng(3).random((11, 13, 3))
  ours = np.asarray(method.predict(state, jnp.asarray(image, jnp.float32)[None]))[0]
  reference = _dped_reference(image, tensors)
  assert reference.std() > 0.02
  np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_a_mismatch_names_the_variable(tmp_path):
  tensors = dped_release()
  tensors["generator/W5"] = np.zeros((3, 3, 64, 32), np.float32)
  write_bundle(tmp_path / "wrong", tensors)
  with pytest.raises(releases.ReleaseError, match=r"'generator/W5' has shape \(3, 3, 64, 32\); gen/W5/kernel "
                                                  r"of this config needs \(3, 3, 64, 64\)"):
    releases.convert("dped", str(tmp_path / "wrong"), out_dir=str(tmp_path / "w"))
  tensors = dped_release()
  del tensors["generator/b3"]
  write_bundle(tmp_path / "missing", tensors)
  with pytest.raises(releases.ReleaseError, match=r"'generator/b3' \(-> gen/W3/bias\) is missing"):
    releases.convert("dped", str(tmp_path / "missing"), out_dir=str(tmp_path / "w"))
  tensors = dped_release()
  tensors["generator/W13"] = np.zeros((3,), np.float32)
  write_bundle(tmp_path / "extra", tensors)
  with pytest.raises(releases.ReleaseError, match="'generator/W13' has no place"):
    releases.convert("dped", str(tmp_path / "extra"), out_dir=str(tmp_path / "w"))
  assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())  # nothing half-written


def test_gladnet_release_through_the_command_line(tmp_path, capsys):
  """GLADNet's released `model/` folder: a `checkpoint` file naming the prefix GLADNet (no step suffix);
  FG/conv2d_<i> in creation order, with Adam's two slots per variable and the step counter beside them."""
  rng = np.random.default_rng(0)
  shapes = [(3, 64)] + [(64, 64)] * 5 + [(64, 64)] * 6 + [(67, 128)] + [(128, 128)] * 3 + [(128, 3)]
  tensors = {}
  for i, (cin, cout) in enumerate(shapes):
    base = "FG/conv2d" + (f"_{i}" if i else "")
    tensors[f"{base}/kernel"] = rng.standard_normal((3, 3, cin, cout)).astype(np.float32) * 0.1
    tensors[f"{base}/bias"] = rng.standard_normal(cout).astype(np.float32) * 0.1
    tensors[f"{base}/kernel/AdamOptimizer"] = np.zeros((3, 3, cin, cout), np.float32)
    tensors[f"{base}/kernel/AdamOptimizer_1"] = np.zeros((3, 3, cin, cout), np.float32)
  tensors["Variable"] = np.int64(3000)
  model = tmp_path / "model"
  model.mkdir()
  write_bundle(model / "GLADNet", tensors, entries_per_block=7)
  (model / "checkpoint").write_text('model_checkpoint_path: "GLADNet"\nall_model_checkpoint_paths: "GLADNet"\n')
  assert weights.main(["gladnet", "--from", str(model), "--weights_dir", str(tmp_path / "w")]) == 0
  out = capsys.readouterr().out
  assert "34 variables mapped, 35 left out" in out
  folder = tmp_path / "w" / "gladnet_GLADNet"  # the run folder README's "Released models" names
  assert f"./launch.sh eval --workdir={folder}   (with its config.json: configs/gladnet.py)" in out
  method, state, _ = load_state(load_config("configs/gladnet.py"), folder)
  np.testing.assert_array_equal(np.asarray(state["net"].params["Conv_13"]["kernel"]), tensors["FG/conv2d_13/kernel"])
  assert weights.main(["gladnet", "--from", str(tmp_path / "nowhere"), "--weights_dir", str(tmp_path / "w")]) == 1
  assert "no TensorFlow checkpoint" in capsys.readouterr().err

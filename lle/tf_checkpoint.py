"""A reader of TensorFlow's checkpoint format (TensorBundle, what `tf.train.Saver` writes by default since
TF 0.12 and `tf.train.Checkpoint` writes in TF 2), without TensorFlow: converting the released DPED and
GLADNet models must not need a 500 MB dependency for one read of a few megabytes.

A checkpoint PREFIX is two or more files:
  PREFIX.index                  an SSTable (LevelDB's table format): keys are tensor names, values are
                                serialised BundleEntryProto (dtype, shape, shard, offset, size, crc32c);
                                the empty key holds the BundleHeaderProto
  PREFIX.data-0000i-of-0000N    the tensors' raw little-endian bytes, back to back
Only what a checkpoint of dense numeric tensors needs is read; anything else (a V1 checkpoint, a
compressed block, a partitioned or string tensor) is an error naming the file and the tensor.
"""
import os
import struct

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
# tensorflow/core/framework/types.proto DataType values of the numeric types.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 14: None, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class CheckpointError(ValueError):
  pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  result = shift = 0
  while True:
    if pos >= len(buf):
      raise CheckpointError("truncated varint")
    byte = buf[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7


def _protobuf_fields(buf: bytes):
  """(field number, wire type, value) of a serialised message: ints for varint / fixed, bytes for
  length-delimited fields."""
  pos = 0
  while pos < len(buf):
    key, pos = _varint(buf, pos)
    field, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 1:
      value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
    elif wire == 2:
      length, pos = _varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
    else:
      raise CheckpointError(f"unsupported protobuf wire type {wire}")
    yield field, wire, value


def _crc32c_table():
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC_TABLE = None


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), the checksum TensorBundle stores (masked) for each tensor."""
  global _CRC_TABLE
  if _CRC_TABLE is None:
    _CRC_TABLE = _crc32c_table()
  table, crc = _CRC_TABLE, 0xFFFFFFFF
  for byte in data:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _block(data: bytes, offset: int, size: int, path: str) -> bytes:
  if offset + size + 5 > len(data):
    raise CheckpointError(f"{path}: a block runs past the end of the file (truncated?)")
  if data[offset + size] != 0:
    raise CheckpointError(f"{path}: compressed table blocks are not supported")
  return data[offset:offset + size]


def _block_entries(block: bytes):
  """(key, value) of one table block: prefix-compressed keys, then the restart array (ignored)."""
  num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
  end = len(block) - 4 - 4 * num_restarts
  pos, key = 0, b""
  while pos < end:
    shared, pos = _varint(block, pos)
    unshared, pos = _varint(block, pos)
    value_len, pos = _varint(block, pos)
    key = key[:shared] + block[pos:pos + unshared]
    pos += unshared
    yield key, block[pos:pos + value_len]
    pos += value_len


def read_index(path: str) -> dict[str, bytes]:
  """{key: value} of every entry of an SSTable file."""
  with open(path, "rb") as f:
    data = f.read()
  if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
    raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (no table magic number at its end)")
  footer = data[-48:]
  _, pos = _varint(footer, 0)  # metaindex handle: offset
  _, pos = _varint(footer, pos)  # and size
  index_offset, pos = _varint(footer, pos)
  index_size, _ = _varint(footer, pos)
  entries = {}
  for _, handle in _block_entries(_block(data, index_offset, index_size, path)):
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    for key, value in _block_entries(_block(data, offset, size, path)):
      entries[key.decode()] = value
  return entries


def _entry(value: bytes) -> dict:
  entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "slices": 0}
  for field, _, v in _protobuf_fields(value):
    if field == 1:
      entry["dtype"] = v
    elif field == 2:
      for shape_field, _, dim in _protobuf_fields(v):
        if shape_field == 2:
          entry["shape"].append(next((s for f, _, s in _protobuf_fields(dim) if f == 1), 0))
        elif shape_field == 3 and dim:
          entry["shape"] = None  # unknown rank
    elif field == 3:
      entry["shard_id"] = v
    elif field == 4:
      entry["offset"] = v
    elif field == 5:
      entry["size"] = v
    elif field == 6:
      entry["crc32c"] = v
    elif field == 7:
      entry["slices"] += 1
  return entry


def resolve_prefix(path: str) -> str:
  """A checkpoint prefix from PREFIX, PREFIX.index, or a folder holding one checkpoint (its `checkpoint`
  file's model_checkpoint_path when present, else the only *.index in it)."""
  path = os.path.expanduser(str(path))
  if path.endswith(".index"):
    path = path[:-len(".index")]
  if os.path.isdir(path):
    state = os.path.join(path, "checkpoint")
    if os.path.exists(state):
      with open(state) as f:
        for line in f:
          if line.startswith("model_checkpoint_path:"):
            name = line.split(":", 1)[1].strip().strip('"')
            return resolve_prefix(name if os.path.isabs(name) else os.path.join(path, name))
    indexes = sorted(n for n in os.listdir(path) if n.endswith(".index"))
    if len(indexes) != 1:
      raise CheckpointError(f"{path}: expected one checkpoint (*.index) in the folder, found {indexes or 'none'}")
    return os.path.join(path, indexes[0][:-len(".index")])
  if not os.path.exists(path + ".index"):
    hint = " (a TF 1 V1 checkpoint? re-save it with a TensorFlow >= 0.12 Saver)" if os.path.exists(path) else ""
    raise FileNotFoundError(f"no TensorFlow checkpoint {path}.index{hint}")
  return path


def read(path: str, *, verify_crc: bool = True) -> dict[str, np.ndarray]:
  """{variable name: array} of the checkpoint at `path` (see `resolve_prefix`); a damaged or foreign file is
  a `CheckpointError` naming it."""
  prefix = resolve_prefix(path)
  try:
    return _read(prefix, verify_crc)
  except CheckpointError as e:
    if str(e).startswith(prefix):
      raise
    raise CheckpointError(f"{prefix}.index: not a readable TensorFlow checkpoint ({e})") from e
  except (struct.error, UnicodeDecodeError, IndexError, ValueError) as e:
    raise CheckpointError(f"{prefix}: not a readable TensorFlow checkpoint ({type(e).__name__}: {e})") from e


def _read(prefix: str, verify_crc: bool) -> dict[str, np.ndarray]:
  entries = read_index(prefix + ".index")
  header = entries.pop("", None)
  num_shards, big_endian = 1, False
  if header is not None:
    for field, _, v in _protobuf_fields(header):
      if field == 1:
        num_shards = v
      elif field == 2:
        big_endian = v == 1
  if big_endian:
    raise CheckpointError(f"{prefix}.index: a big-endian checkpoint is not supported")
  shards = {}
  out = {}
  for name, value in sorted(entries.items()):
    entry = _entry(value)
    if entry["slices"]:
      raise CheckpointError(f"{prefix}: tensor {name!r} is partitioned into slices (not supported)")
    dtype = _DTYPES.get(entry["dtype"])
    if dtype is None:
      raise CheckpointError(f"{prefix}: tensor {name!r} has unsupported dtype enum {entry['dtype']}")
    shard = entry["shard_id"]
    if shard not in shards:
      shard_path = f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"
      if not os.path.exists(shard_path):
        raise FileNotFoundError(f"checkpoint data file {shard_path} is missing")
      with open(shard_path, "rb") as f:
        shards[shard] = f.read()
    raw = shards[shard][entry["offset"]:entry["offset"] + entry["size"]]
    if len(raw) != entry["size"]:
      raise CheckpointError(f"{prefix}: tensor {name!r} runs past the end of its data file (truncated?)")
    if verify_crc and entry["crc32c"] is not None and masked_crc32c(raw) != entry["crc32c"]:
      raise CheckpointError(f"{prefix}: tensor {name!r} fails its CRC-32C check (a damaged file?)")
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    out[name] = array.reshape(entry["shape"]).astype(dtype) if entry["shape"] is not None else array
  return out

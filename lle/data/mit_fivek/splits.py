"""Train / test splits of MIT-Adobe FiveK by image id (`a0001` ... `a5000`), independent of the files.

  * `standard`: a0001-a4500 train, a4501-a5000 test (the usual split of the literature).
  * `montulet`: Montulet & Briassouli 2019 sec. 3 test on "about 10%" of FiveK drawn with numpy's
    uniform pseudo-random generator, 442 images, and train on the other 4558. Their ids are not
    published: here the 442 test ids are `np.random.default_rng(MONTULET_SEED).choice(5000, 442,
    replace=False)` (plus one, sorted), so the test size and the sampling match the paper and the ids are
    fixed; results are comparable in kind, not image for image.
  * a split file: JSON `{"train": ["a0001", ...], "test": [...], ...}` (ids as `aNNNN` strings or
    integers), or text with one `SPLIT ID` pair per line (`#` starts a comment). Any split names
    ([A-Za-z][A-Za-z0-9_]*); an id may be in at most one split.
"""
import json
import re

import numpy as np
from etils import epath

NUM_IMAGES = 5000
STANDARD_NUM_TRAIN = 4500
MONTULET_SEED = 2019  # fixed here (the year of the paper); the paper gives none
MONTULET_NUM_TEST = 442  # Montulet & Briassouli 2019, sec. 3
SCHEMES = ("standard", "montulet")

_ID = re.compile(r"a(\d{4})(?![0-9])")


def image_id(number: int) -> str:
  return f"a{number:04d}"


def parse_id(text) -> str | None:
  """`a0001-jmac_DSC1459.tif`, `a0001.jpg`, `A0001`, `1` -> `a0001`; None if the text carries no id."""
  if isinstance(text, (int, np.integer)):
    return image_id(int(text)) if 1 <= text <= NUM_IMAGES else None
  text = str(text).strip()
  if text.isdigit():
    return parse_id(int(text))
  match = _ID.match(text.lower())
  if match is None or not 1 <= int(match.group(1)) <= NUM_IMAGES:
    return None
  return image_id(int(match.group(1)))


def standard_split() -> dict[str, list[str]]:
  ids = [image_id(i) for i in range(1, NUM_IMAGES + 1)]
  return {"train": ids[:STANDARD_NUM_TRAIN], "test": ids[STANDARD_NUM_TRAIN:]}


def montulet_split(seed: int = MONTULET_SEED, num_test: int = MONTULET_NUM_TEST) -> dict[str, list[str]]:
  rng = np.random.default_rng(seed)
  test = set((rng.choice(NUM_IMAGES, size=num_test, replace=False) + 1).tolist())
  ids = range(1, NUM_IMAGES + 1)
  return {"train": [image_id(i) for i in ids if i not in test], "test": [image_id(i) for i in sorted(test)]}


def read_split_file(path) -> dict[str, list[str]]:
  """Reads a user split file (see the module docstring); `ValueError` naming the file and the bad entry."""
  path = epath.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"split file {path} does not exist")
  text = path.read_text()
  raw: dict[str, list] = {}
  if path.suffix.lower() == ".json":
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"split file {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
      raise ValueError(f"split file {path} must hold a JSON object of split name -> list of ids")
    raw = data
  else:
    for number, line in enumerate(text.splitlines(), 1):
      line = line.split("#", 1)[0].strip()
      if not line:
        continue
      parts = line.split()
      if len(parts) != 2:
        raise ValueError(f"{path}:{number}: expected 'SPLIT ID', got {line!r}")
      raw.setdefault(parts[0], []).append(parts[1])
  if not raw:
    raise ValueError(f"split file {path} names no split")
  out, seen = {}, {}
  for split, ids in raw.items():
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", split):
      raise ValueError(f"split file {path}: bad split name {split!r} (letters, digits and _)")
    parsed = []
    for item in ids:
      image = parse_id(item)
      if image is None:
        raise ValueError(f"split file {path}: {item!r} in split {split!r} is not a FiveK id "
                         f"(a0001 ... a{NUM_IMAGES})")
      if image in seen:
        raise ValueError(f"split file {path}: {image} is in both {seen[image]!r} and {split!r}")
      seen[image] = split
      parsed.append(image)
    if not parsed:
      raise ValueError(f"split file {path}: split {split!r} is empty")
    out[split] = sorted(parsed)
  return out


def scheme_split(scheme: str) -> dict[str, list[str]]:
  if scheme == "standard":
    return standard_split()
  if scheme == "montulet":
    return montulet_split()
  raise ValueError(f"unknown FiveK split scheme {scheme!r}; expected one of {SCHEMES} or a split file")

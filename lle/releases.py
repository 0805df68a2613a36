"""The released TensorFlow 1 models of DPED (aiff22/DPED `models_orig/<phone>_orig`, also shipped by IQE)
and GLADNet (weichen582/GLADNet `model/`), converted into lle run folders that `./launch.sh eval` and
`./launch.sh enhance` read like any trained run:

  python -m lle.weights dped --from DIR/iphone_orig       # -> $LLE_WEIGHTS_DIR/dped_iphone_orig/
  python -m lle.weights gladnet --from DIR/model          # -> $LLE_WEIGHTS_DIR/gladnet_<checkpoint name>/
  ./launch.sh eval --workdir=$LLE_WEIGHTS_DIR/dped_iphone_orig    (with the folder's config.json)
  ./launch.sh enhance --workdir=... --input=photos/ --output=out/

The checkpoint is read by `lle.tf_checkpoint` (no TensorFlow). Every variable of the network is matched by
its official name and shape; a missing variable, a shape mismatch or an unexpected variable of the
network's scope stops the conversion with an error naming it. Optimiser slots, step counters and the
discriminator (not part of the releases) are left out. The run folder holds an Orbax checkpoint at step
0 of the method's whole state (networks without released weights keep their initialisation), the
config.json of the config the weights fit, and `release.json` (source files, SHA-256, name mapping). The
folder is written beside an existing one and renamed into place; only a folder that lle converted is
replaced (see `lle.weights.write_folder`).
"""
import hashlib
import json
import os

import jax
import numpy as np

from lle import tf_checkpoint

# The config each release fits (its networks' shapes), relative to the repository.
DEFAULT_CONFIGS = {"dped": "configs/iqe.py:release", "gladnet": "configs/gladnet.py"}
HOMEPAGES = {"dped": "https://github.com/aiff22/DPED (models_orig/)",
             "gladnet": "https://github.com/weichen582/GLADNet (model/)"}


class ReleaseError(ValueError):
  pass


def dped_names(num_blocks: int = 4) -> dict[str, tuple[str, ...]]:
  """{TF variable: lle parameter path in state['gen'].params}. DPED's `models.resnet` names its convs
  W1..W12 / b1..b12 in scope `generator`; the instance norms' unnamed tf.Variable shift and scale become
  generator/Variable, Variable_1, ... in creation order (shift, then scale, for norms after W2..W9)."""
  convs = 2 * num_blocks + 4
  names = {}
  for i in range(1, convs + 1):
    names[f"generator/W{i}"] = (f"W{i}", "kernel")
    names[f"generator/b{i}"] = (f"W{i}", "bias")
  for k in range(2 * num_blocks):
    suffix = lambda n: "" if n == 0 else f"_{n}"  # noqa: E731
    names[f"generator/Variable{suffix(2 * k)}"] = (f"norm{k + 2}", "shift")
    names[f"generator/Variable{suffix(2 * k + 1)}"] = (f"norm{k + 2}", "scale")
  return names


def gladnet_names(num_convs: int) -> dict[str, tuple[str, ...]]:
  """GLADNet's `FG` builds every layer with tf.layers.conv2d in scope FG: FG/conv2d, FG/conv2d_1, ...
  in creation order, which is the order Flax numbers Conv_0, Conv_1, ..."""
  names = {}
  for i in range(num_convs):
    tf_name = "FG/conv2d" + ("" if i == 0 else f"_{i}")
    names[f"{tf_name}/kernel"] = (f"Conv_{i}", "kernel")
    names[f"{tf_name}/bias"] = (f"Conv_{i}", "bias")
  return names


def _is_training_only(name: str) -> bool:
  """Optimiser slots and counters that a training checkpoint carries beside the weights."""
  last = name.rsplit("/", 1)[-1]
  return ("Adam" in name or "Momentum" in name or last.startswith(("beta1_power", "beta2_power"))
          or name in ("global_step", "Variable"))


def map_variables(arch: str, variables: dict, params: dict, source: str, *, net_key: str) -> dict:
  """`params` (a Flax params dict) with every mapped leaf replaced by the checkpoint's array."""
  if arch == "dped":
    names, scope = dped_names(sum(1 for k in params if k.startswith("norm")) // 2), "generator/"
  else:
    names, scope = gladnet_names(len(params)), "FG/"
  unexpected = sorted(n for n in variables if n.startswith(scope) and n not in names and not _is_training_only(n))
  if unexpected:
    raise ReleaseError(f"{source}: variable {unexpected[0]!r} has no place in the {arch} network of this "
                       f"config (unexpected: {unexpected[:5]}); a checkpoint of another architecture?")
  out = jax.tree.map(np.asarray, params)
  for tf_name, (layer, leaf) in names.items():
    if tf_name not in variables:
      near = sorted(n for n in variables if n.startswith(scope))[:8]
      raise ReleaseError(f"{source}: variable {tf_name!r} (-> {net_key}/{layer}/{leaf}) is missing; "
                         f"found {near}...")
    if layer not in out or leaf not in out[layer]:
      raise ReleaseError(f"{source}: variable {tf_name!r} maps to {layer}/{leaf}, which this config's network lacks")
    value, expected = variables[tf_name], out[layer][leaf].shape
    if tuple(value.shape) != tuple(expected):
      raise ReleaseError(f"{source}: variable {tf_name!r} has shape {tuple(value.shape)}; {net_key}/{layer}/{leaf} "
                         f"of this config needs {tuple(expected)}")
    if not np.isfinite(value).all():
      raise ReleaseError(f"{source}: variable {tf_name!r} holds non-finite values")
    out[layer][leaf] = np.asarray(value, np.float32)
  return out


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def convert(arch: str, source: str, *, config_spec: str | None = None, name: str | None = None,
            out_dir: str | None = None) -> str:
  """Converts the checkpoint at `source` into the run folder `out_dir/name` and returns its path."""
  from lle import config_lib, methods, train, weights
  if arch not in DEFAULT_CONFIGS:
    raise ReleaseError(f"unknown release {arch!r}; expected one of {sorted(DEFAULT_CONFIGS)}")
  prefix = tf_checkpoint.resolve_prefix(source)
  folder = weights.folder_of(name or f"{arch}_{os.path.basename(prefix)}", out_dir)
  variables = tf_checkpoint.read(prefix)
  spec = config_spec or DEFAULT_CONFIGS[arch]
  config = config_lib.load(config_lib.resolve(spec))
  expected_method = {"dped": "iqe", "gladnet": "gladnet"}[arch]
  if config.method != expected_method:
    raise ReleaseError(f"--config {spec} is a {config.method!r} config; {arch} weights need {expected_method!r}")
  net_key = "gen" if arch == "dped" else "net"
  method = methods.get(config)
  state = jax.jit(method.init)(jax.random.key(config.seed))
  params = map_variables(arch, variables, state[net_key].params, prefix, net_key=net_key)
  state[net_key] = state[net_key].replace(params=jax.tree.map(np.asarray, params))

  names = dped_names(config.generator.num_blocks) if arch == "dped" else gladnet_names(len(params))
  files = [prefix + ".index"] + sorted(
      os.path.join(os.path.dirname(prefix), f) for f in os.listdir(os.path.dirname(prefix) or ".")
      if f.startswith(os.path.basename(prefix) + ".data-"))
  release = {"arch": arch, "config": spec, "source": os.path.abspath(prefix),
             "files": {os.path.basename(f): _sha256(f) for f in files},
             "mapping": {tf: "/".join((net_key,) + p) for tf, p in names.items()},
             "left_out": sorted(n for n in variables if n not in names)}

  def fill(tmp):
    import orbax.checkpoint as ocp
    manager = train.checkpoint_manager(tmp, config)
    manager.save(0, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    manager.close()
    train.write_config(tmp, config)
    with open(os.path.join(tmp, "release.json"), "w") as f:
      json.dump(release, f, indent=2)

  return weights.write_folder(folder, fill)

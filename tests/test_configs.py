"""Every variant of every method's config: it loads with the run fields, builds its method's state, changes
what it says it changes (or nothing, for the variant that names the default), and keeps that change when
combined with `demo` or `tiny` the way sweeps combine them."""
import importlib.util
import os

import jax
import pytest

from lle import methods
from tests.conftest import REPO, load_config

RUN_FIELDS = ("seed", "num_train_steps", "batch_size", "eval_every_steps", "checkpoint_every_steps")
CONFIGS = ("configs/itmn.py", "configs/gladnet.py", "configs/neid.py", "configs/tmgan.py", "configs/iqe.py")
SIZE_VARIANTS = ("demo", "tiny")  # run sizes, not settings of the paper
DEFAULT_VARIANTS = {"configs/itmn.py": "full", "configs/gladnet.py": "code", "configs/neid.py": "le_dr_ff", "configs/tmgan.py": "paper",
                    "configs/iqe.py": "code"}
EVAL_ONLY_VARIANTS = ("release",)  # imported weights, scored and used, not trained: 0 training steps  # name the default setting


def _variants(path):
  spec = importlib.util.spec_from_file_location("_variants_" + os.path.basename(path)[:-3], os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return tuple(module.VARIANTS)


def _flat(config):
  out = {}

  def walk(node, prefix):
    for key, value in node.items():
      if hasattr(value, "items"):
        walk(value, f"{prefix}{key}.")
      else:
        out[prefix + key] = value
  walk(config, "")
  return out


TAGS = ("variants", "scale")  # what apply_variants records of the names given, not settings


def _changed(a, b):
  a, b = _flat(a), _flat(b)
  return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in TAGS}


SETTINGS = [(path, v) for path in CONFIGS for v in _variants(path) if v not in SIZE_VARIANTS]
SPECS = [spec for path in CONFIGS for spec in
         (path, *(f"{path}:{v}" for v in _variants(path)), *(f"{path}:demo,{v}" for v in _variants(path)
                                                            if v not in SIZE_VARIANTS))]


def test_every_method_has_demo_tiny_and_settings():
  for path in CONFIGS:
    variants = _variants(path)
    assert set(SIZE_VARIANTS) <= set(variants), path
    assert len(variants) > len(SIZE_VARIANTS), path
    assert load_config(path).method == os.path.basename(path)[:-3]


@pytest.mark.parametrize("spec", SPECS)
def test_every_variant_loads_with_the_run_fields_and_builds_its_state(spec, request):
  config = load_config(spec)
  if config.loss.get("perceptual_weight") or config.loss.get("content_weight"):
    request.getfixturevalue("fake_vgg_weights")  # VGG feature losses read converted weights
  for field in RUN_FIELDS:
    assert isinstance(config[field], int), field
  eval_only = any(v in spec.split(":")[-1].split(",") for v in EVAL_ONLY_VARIANTS) if ":" in spec else False
  assert config.batch_size > 0 and (config.num_train_steps > 0 or eval_only)
  assert config.eval_every_steps > 0 and config.checkpoint_every_steps > 0
  state = jax.eval_shape(methods.get(config).init, jax.random.key(0))  # shapes only: no compile, no memory
  assert jax.tree.leaves(state)


@pytest.mark.parametrize("path,variant", SETTINGS)
def test_each_setting_changes_the_config_and_survives_demo_and_tiny(path, variant):
  changed = _changed(load_config(path), load_config(f"{path}:{variant}"))
  if DEFAULT_VARIANTS.get(path) == variant:
    assert not changed  # it names the default: loading the file alone gives the same config
    return
  assert changed, f"{path}:{variant} changes nothing"
  for size in SIZE_VARIANTS:
    sized, combined = load_config(f"{path}:{size}"), load_config(f"{path}:{size},{variant}")
    want, got = _flat(load_config(f"{path}:{variant}")), _flat(combined)
    assert {k: got[k] for k in changed} == {k: want[k] for k in changed}, (size, variant)
    # Nothing beyond the setting's own fields (a data-set setting may repeat values the size variant sets).
    assert _changed(sized, combined) <= changed, (size, variant)


def test_paper_values_and_ablations():
  paper = load_config("configs/itmn.py")
  assert (paper.loss.lam, paper.loss.alpha, paper.batch_size, paper.num_train_steps) == (1e4, 1e5, 6, 80_000)
  assert paper.data.crop_size == 512 and paper.optimizer.name == "rmsprop"
  assert paper.optimizer.learning_rate == 1e-4 and len(paper.generator.features) == 5
  assert load_config("configs/itmn.py:nodmse").loss.alpha == 0.0
  assert load_config("configs/itmn.py:noadvreg").loss.adversarial is False
  combined = load_config("configs/itmn.py:demo,nodmse")
  assert combined.loss.alpha == 0.0 and combined.data.crop_size == 128


@pytest.mark.parametrize("path", CONFIGS)
def test_unknown_variant_names_the_choices(path):
  with pytest.raises(ValueError, match="unknown config variant 'nope'.*demo"):
    load_config(f"{path}:nope")


def test_width_scaled_init_keeps_the_papers_per_layer_gain():
  """A 3x3 conv's output std over unit-variance inputs is std * sqrt(9 C): the rescaled std gives a 16-channel
  layer the gain the paper's std gives a 64-channel one, and keeps the initialiser's family."""
  import jax.numpy as jnp
  from flax import linen as nn
  from lle import config_lib
  from lle.nn.iqe import init_fn

  def gain(name, channels):
    conv = nn.Conv(channels, (3, 3), padding="VALID", use_bias=False, kernel_init=init_fn(name))
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 34, 34, channels))
    params = conv.init(jax.random.PRNGKey(1), x)
    return float(jnp.std(conv.apply(params, x)))

  assert config_lib.width_scaled_init("normal_0.02", 64, 16) == "normal_0.04"
  scaled = config_lib.width_scaled_init("truncated_normal_0.01", 64, 16)
  assert scaled.startswith("truncated_normal_")
  assert gain(scaled, 16) == pytest.approx(gain("truncated_normal_0.01", 64), rel=0.1)
  assert gain("truncated_normal_0.01", 16) == pytest.approx(gain("truncated_normal_0.01", 64) / 2, rel=0.1)
  with pytest.raises(ValueError, match="he_gaussian"):
    config_lib.width_scaled_init("he_gaussian", 64, 16)
  assert load_config("configs/neid.py:demo").model.kernel_init == "normal_0.04"
  assert load_config("configs/iqe.py:paper,demo").generator.kernel_init.startswith("normal_0.023")

"""`config.layer_forms`: every network computes the same function (outputs, gradients, batch statistics)
with the CPU re-expressions and with XLA's plain ops, and each method's steps follow the config: with
"plain" forms (or "auto" on a GPU backend) no re-expression is left in their jaxprs."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lle import evaluate, losses, methods
from lle.nn import discriminator, gladnet, iqe, layers, neid, tmgan, unet, vgg
from tests.conftest import load_config

NETWORKS = {  # name: (module for the given forms, input shape, apply kwargs, has batch statistics)
    # up-convolutions to 20 and 3 features: both sub-pixel forms (stacked: <= 16 outputs)
    "unet": (lambda f: unet.UNet(features=(20, 4), forms=f), (2, 16, 16, 3), {"train": True}, True),
    "conv_fc_discriminator": (lambda f: discriminator.ConvFCDiscriminator(conv_features=(4, 8), fc_features=(6,),
                                                                          forms=f), (2, 16, 16, 3), {"train": True}, True),
    "gladnet": (lambda f: gladnet.GLADNet(num_blocks=2, global_size=16, global_features=4, detail_features=(8,),
                                          forms=f), (2, 24, 24, 3), {}, False),
    "neid": (lambda f: neid.NEID(features=(4, 8), forms=f), (2, 16, 16, 3), {"with_dr": True}, False),
    "tmgan_unet": (lambda f: tmgan.LightnessUNet(features=(4, 8), forms=f), (2, 16, 16, 1), {}, False),
    "tmgan_patch": (lambda f: tmgan.PatchDiscriminator(features=(4, 8), forms=f), (2, 16, 16, 2), {}, False),
    "iqe_generator_instance": (lambda f: iqe.Generator(features=4, num_blocks=1, forms=f), (2, 12, 12, 3),
                               {"train": True}, False),
    "iqe_generator_batch": (lambda f: iqe.Generator(features=4, num_blocks=1, norm="batch", forms=f), (2, 12, 12, 3),
                            {"train": True}, True),
    "iqe_discriminator": (lambda f: iqe.Discriminator(conv_features=(4, 4, 4, 4, 4), fc_features=8, forms=f),
                          (2, 32, 32, 1), {"train": True}, False),
    # odd sizes after the first pool ('SAME' pooling pads them)
    "vgg19": (lambda f: vgg.VGG(depth=19, taps=("relu2_2", "relu3_1"), pool_padding="SAME", forms=f), (1, 14, 14, 3),
              {}, False),
}


def _loss_and_grads(module, variables, x, kwargs, batch_stats):
  """sum(sin(outputs)) (every output, every tap), its gradients for the parameters and the input, and the
  updated batch statistics."""
  def loss(params, x):
    full = {**variables, "params": params}
    if batch_stats:
      out, updates = module.apply(full, x, mutable=["batch_stats"], **kwargs)
    else:
      out, updates = module.apply(full, x, **kwargs), {}
    return sum(jnp.sum(jnp.sin(y)) for y in jax.tree.leaves(out)), (out, updates)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(variables["params"], x)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_plain_and_cpu_forms_are_the_same_network(name):
  build, shape, kwargs, batch_stats = NETWORKS[name]
  x = jnp.asarray(np.random.default_rng(0).random(shape), jnp.float32)
  cpu, plain = build("cpu"), build("plain")
  learned = lambda v: {k: v[k] for k in ("params", "batch_stats") if k in v}  # not what a layer sows
  init = lambda module: learned(jax.jit(lambda x: module.init(jax.random.key(0), x, **kwargs))(x))  # eager: slower
  variables = init(cpu)
  # the same names, shapes and values (two compiled programs: truncated normals may round differently)
  chex.assert_trees_all_close(init(plain), variables, rtol=1e-4, atol=1e-7)
  (value_cpu, (out_cpu, stats_cpu)), grads_cpu = _loss_and_grads(cpu, variables, x, kwargs, batch_stats)
  (value_plain, (out_plain, stats_plain)), grads_plain = _loss_and_grads(plain, variables, x, kwargs, batch_stats)
  # the per-layer tests' tolerances (tests/test_nn.py): float32 sums in another order
  chex.assert_trees_all_close(out_cpu, out_plain, rtol=1e-4, atol=5e-5)
  chex.assert_trees_all_close(stats_cpu, stats_plain, rtol=1e-4, atol=1e-5)
  chex.assert_trees_all_close(grads_cpu, grads_plain, rtol=1e-4, atol=2e-4)
  assert float(value_cpu) == pytest.approx(float(value_plain), rel=1e-5, abs=1e-4)
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads_cpu)) > 1e-3  # the gradients are not all zero


@pytest.mark.parametrize("kernel", ["dped", "paper"])
def test_colour_loss_blur_forms_agree(kernel):
  """DPED's colour loss: banded matrix products ("cpu") and the depthwise convolution ("plain")."""
  rng = np.random.default_rng(1)
  pred, target = (jnp.asarray(rng.random((2, 30, 26, 3)), jnp.float32) for _ in range(2))
  k = losses.color_kernel(kernel)
  value_and_grad = lambda forms: jax.value_and_grad(
      lambda p: losses.color_loss(p, target, kernel=k, forms=forms))(pred)
  (v_cpu, g_cpu), (v_plain, g_plain) = value_and_grad("cpu"), value_and_grad("plain")
  assert float(v_cpu) == pytest.approx(float(v_plain), rel=1e-5)
  np.testing.assert_allclose(g_cpu, g_plain, rtol=1e-4, atol=1e-6)
  plain_jaxpr = str(jax.make_jaxpr(lambda p: losses.color_loss(p, target, kernel=k, forms="plain"))(pred))
  assert "feature_group_count=3" in plain_jaxpr and "dot_general" not in plain_jaxpr


def test_auto_resolves_by_backend_and_bad_names_are_refused(monkeypatch):
  config = load_config("configs/gladnet.py:tiny")
  assert config.layer_forms == "auto" and layers.layer_forms(config) == "cpu"  # the tests run on the CPU
  for backend in ("gpu", "tpu"):
    monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
    assert layers.layer_forms(config) == "plain"
  config.layer_forms = "cpu"
  assert layers.layer_forms(config) == "cpu"  # asked for explicitly: on any backend
  config.layer_forms = "fast"
  with pytest.raises(ValueError, match="config.layer_forms='fast'; expected one of"):
    layers.layer_forms(config)


# The mark of the layers' re-expressions in a jaxpr: their custom VJPs (kernel taps by slices, the strided
# and stride-1 convolutions' CPU backward passes, max pooling's selects, the norms' matrix-product sums).
CPU_MARKER = "custom_vjp_call"
# What the plain forms show instead, per method (forward and backward), where the CPU forms show none: XLA's
# transposed convolution (the input dilated by 2), reduce_window max pooling and its select-and-scatter
# gradient, the depthwise blur of the colour loss (its CPU form: banded matrix products, no custom VJP).
PLAIN_MARKERS = {"itmn": ("lhs_dilation=(2, 2)",), "neid": ("reduce_window_max", "select_and_scatter_add"),
                 "iqe": ("reduce_window_max", "feature_group_count=3"), "tmgan": ("reduce_window_max",),
                 "gladnet": ()}


def _step_jaxprs(name, forms):
  """The jaxprs of one train step and of predict (and of one tiled window where the method has a global
  part), for the method's tiny config with VGG feature losses on, in `forms`."""
  config = load_config(f"configs/{name}.py:tiny")
  config.layer_forms = forms
  if name == "iqe":
    config.loss.content_weight = 1.0
    config.loss.content_layer = "relu2_1"  # through pool1
  if name == "tmgan":
    config.loss.perceptual_weight = 1.0
  method = methods.get(config)
  state = jax.eval_shape(method.init, jax.random.key(0))
  size = config.data.crop_size
  small = size // config.data.get("input_scale", 1)
  batch = {"input": jnp.zeros((config.batch_size, small, small, 3)), "target": jnp.zeros((config.batch_size, size, size, 3)),
           "input_hr": jnp.zeros((config.batch_size, size, size, 3))}  # NEID's DR target; the others ignore it
  out = {"train_step": jax.make_jaxpr(method.train_step)(state, batch, jax.random.key(0)),
         "predict": jax.make_jaxpr(method.predict)(state, batch["input"][:1])}
  if name in ("iqe", "neid"):  # windows normalised or attended with the whole image's statistics
    context = (None if method.tiling.context is None else
               jax.eval_shape(lambda s: method.tiling.context(s, _OneImage(batch["input"][0])), state))
    out["tiled window"] = jax.make_jaxpr(
        lambda s, w, c: method.tiling.predict_window(s, w, c, None, None, None))(state, batch["input"][:1], context)
  return {k: str(v) for k, v in out.items()}


class _OneImage:
  """What a method's tiling `context` reads of `lle.tiling.TiledImage`: the whole image as one window."""
  def __init__(self, pixels):
    self.pixels, self.size = pixels, pixels.shape[:2]

  def sample(self, rows, cols):
    return self.pixels[jnp.asarray(rows)][:, jnp.asarray(cols)][None]

  def batches(self):
    h, w = self.size
    yield self.pixels[None], None, np.array([[0, 0, h, w]])


@pytest.mark.parametrize("name", methods.NAMES)
def test_each_method_follows_the_config_and_auto_on_a_gpu_is_plain(name, fake_vgg_weights, monkeypatch):
  cpu, plain = _step_jaxprs(name, "cpu"), _step_jaxprs(name, "plain")
  assert CPU_MARKER in cpu["train_step"] and CPU_MARKER in cpu["predict"]  # the mark finds the CPU forms
  for part, jaxpr in plain.items():
    assert CPU_MARKER not in jaxpr, f"{name} {part}: a CPU re-expression in the plain forms"
  for marker in PLAIN_MARKERS[name]:
    assert marker in plain["train_step"] and marker not in cpu["train_step"], marker
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert _step_jaxprs(name, "auto") == plain


def test_results_json_records_the_forms_used(tmp_path, monkeypatch):
  config = load_config("configs/neid.py:tiny")
  write = lambda: evaluate.write_results(tmp_path, config=config, step=1, means={"model": {}}, per_image={},
                                         dataset={}, num_devices=1)
  assert write()["layer_forms"] == "cpu"  # "auto" on the CPU backend
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert json.loads((tmp_path / "results.json").read_text())["layer_forms"] == "cpu"
  assert write()["layer_forms"] == "plain" and json.loads((tmp_path / "results.json").read_text())["config"][
      "layer_forms"] == "auto"

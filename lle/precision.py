"""Mixed precision: `config.dtype = "bfloat16"` runs the networks in bfloat16 while the parameters, the
optimizer state, the losses and the metrics stay float32 (the usual accelerator policy: bf16 matmuls and
convolutions at twice the throughput and half the activation memory, fp32 master weights so small
updates are not rounded away). "float32" (the default, and what the papers trained with) changes nothing.
"""
import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(config):
  name = config.get("dtype", "float32")
  if name not in DTYPES:
    raise ValueError(f"config.dtype={name!r}; expected one of {sorted(DTYPES)}")
  return DTYPES[name]


def _cast(tree, dtype):
  return jax.tree.map(lambda x: x.astype(dtype) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
                      else x, tree)


def apply_fn(module, config):
  """`module.apply`, computing in `config.dtype`: float parameters and inputs are cast to it on the way in
  (gradients flow back to the float32 parameters through the cast), float outputs (and mutated
  collections) come back as float32. Statistics such as batch norm's running averages stay float32."""
  dtype = compute_dtype(config)
  if dtype == jnp.float32:
    return module.apply

  def apply(variables, *args, **kwargs):
    variables = {k: _cast(v, dtype) if k == "params" else v for k, v in variables.items()}
    out = module.apply(variables, *_cast(args, dtype), **_cast(kwargs, dtype))
    return _cast(out, jnp.float32)

  return apply

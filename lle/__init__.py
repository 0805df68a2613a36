"""lle: low-light enhancement and (inverse) tone mapping in JAX/Flax."""

__version__ = "0.1.0"

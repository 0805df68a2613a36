"""DPED, the DSLR Photo Enhancement data set (TFDS name `dped`; configs `iphone`, `blackberry`, `sony`
and `<phone>_full` for the full-size test photos)."""
from lle.data.dped.builder import Dped, DpedConfig

__all__ = ["Dped", "DpedConfig"]

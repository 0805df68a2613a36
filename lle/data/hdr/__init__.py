"""(LDR, HDR) pairs for inverse tone mapping from a folder of HDR images (TFDS name `hdr`)."""
from lle.data.hdr.builder import Hdr, HdrConfig, make_config
from lle.data.hdr import tonemap

__all__ = ["Hdr", "HdrConfig", "make_config", "tonemap"]

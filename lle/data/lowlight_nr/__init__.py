"""Real low-light photos without references (TFDS name `lowlight_nr`; configs `lime`, `dicm`, `npe`, `mef`)."""
from lle.data.lowlight_nr.builder import LowlightNr, NrConfig

__all__ = ["LowlightNr", "NrConfig"]

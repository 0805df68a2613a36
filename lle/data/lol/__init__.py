"""LOL, the LOw-Light paired data set (TFDS name `lol`; configs `v1`, `v2_real`, `v2_synthetic`)."""
from lle.data.lol.builder import Lol, LolConfig

__all__ = ["Lol", "LolConfig"]

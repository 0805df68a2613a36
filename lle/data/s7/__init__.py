"""The Samsung S7 ISP data set (TFDS name `s7`; configs `short_jpg`, `short_raw`)."""
from lle.data.s7.builder import S7, S7Config

__all__ = ["S7", "S7Config"]

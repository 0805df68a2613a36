"""The embedded demo data set (TFDS name `lle_demo`), made from photos shipped inside installed wheels."""
from lle.data.demo.builder import LleDemo, PHOTOS, TEST_PHOTOS

__all__ = ["LleDemo", "PHOTOS", "TEST_PHOTOS"]

"""Data: TFDS builders (one sub-package each) and grain input pipelines."""

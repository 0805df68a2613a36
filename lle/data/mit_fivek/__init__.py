"""MIT-Adobe FiveK (TFDS name `mit_fivek`; configs `expert_<a-e>[_raw][_montulet]`, see `builder.py`)."""
from lle.data.mit_fivek.builder import MitFivek, MitFivekConfig, custom_config
from lle.data.mit_fivek.splits import montulet_split, read_split_file, standard_split

__all__ = ["MitFivek", "MitFivekConfig", "custom_config", "montulet_split", "read_split_file", "standard_split"]

import pytest
from tests.conftest import load_config


RUN_FIELDS = ("seed", "num_train_steps", "batch_size", "eval_every_steps", "checkpoint_every_steps")


@pytest.mark.parametrize("spec", ["configs/itmn.py", "configs/itmn.py:nodmse", "configs/itmn.py:noadvreg",
                                  "configs/itmn.py:demo", "configs/itmn.py:tiny", "configs/itmn.py:demo,nodmse"])
def test_every_variant_loads_with_the_run_fields(spec):
  config = load_config(spec)
  for field in RUN_FIELDS:
    assert isinstance(config[field], int), field
  assert config.batch_size > 0 and config.num_train_steps > 0


def test_paper_values_and_ablations():
  paper = load_config("configs/itmn.py")
  assert (paper.loss.lam, paper.loss.alpha, paper.batch_size, paper.num_train_steps) == (1e4, 1e5, 6, 80_000)
  assert paper.data.crop_size == 512 and paper.optimizer.name == "rmsprop"
  assert paper.optimizer.learning_rate == 1e-4 and len(paper.generator.features) == 5
  assert load_config("configs/itmn.py:nodmse").loss.alpha == 0.0
  assert load_config("configs/itmn.py:noadvreg").loss.adversarial is False
  combined = load_config("configs/itmn.py:demo,nodmse")
  assert combined.loss.alpha == 0.0 and combined.data.crop_size == 128


def test_unknown_variant_names_the_choices():
  with pytest.raises(ValueError, match="unknown config variant 'nope'.*demo"):
    load_config("configs/itmn.py:nope")

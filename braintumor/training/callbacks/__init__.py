"""Lightning callbacks of braintumor."""

from braintumor.training.callbacks.checkpoint import RunCheckpoint
from braintumor.training.callbacks.finetuning import FreezeBackbone
from braintumor.training.callbacks.interrupt import InterruptCheckpoint
from braintumor.training.callbacks.pruning import OptunaPruning
from braintumor.training.callbacks.replay import ReplayableTraining
from braintumor.training.callbacks.sample_grid import AugmentedSampleGrid

__all__ = [
    "AugmentedSampleGrid",
    "FreezeBackbone",
    "InterruptCheckpoint",
    "OptunaPruning",
    "ReplayableTraining",
    "RunCheckpoint",
]

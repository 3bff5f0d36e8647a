"""Lightning callbacks of braintumor."""

from braintumor.callbacks.checkpoint import RunCheckpoint
from braintumor.callbacks.interrupt import InterruptCheckpoint
from braintumor.callbacks.replay import ReplayableTraining
from braintumor.callbacks.sample_grid import AugmentedSampleGrid

__all__ = ["AugmentedSampleGrid", "InterruptCheckpoint", "ReplayableTraining", "RunCheckpoint"]

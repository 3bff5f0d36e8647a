"""Lightning callbacks of braintumor."""

from braintumor.callbacks.sample_grid import AugmentedSampleGrid

__all__ = ["AugmentedSampleGrid"]

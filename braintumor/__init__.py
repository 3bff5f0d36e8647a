"""braintumor: brain-tumor MRI classification with Lightning + Hydra."""

__version__ = "0.1.0"

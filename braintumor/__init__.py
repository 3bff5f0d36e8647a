"""braintumor: brain-tumor MRI classification with Lightning + Hydra."""

from braintumor.resolvers import register_resolvers

__version__ = "0.1.0"

register_resolvers()

"""Networks: plain ``nn.Module``s that know nothing of Lightning or data."""

from braintumor.models.cnn import MRICNN

__all__ = ["MRICNN"]

"""Networks: plain ``nn.Module``s that know nothing of Lightning or data, built by one
``build_model`` (timm's ``create_model``), each knowing its data config."""

from braintumor.models.backbones import Backbone
from braintumor.models.cnn import MRICNN
from braintumor.models.data_config import IMAGENET_MEAN, IMAGENET_STD, imagenet_normalization
from braintumor.models.factory import build_model, model_data_config

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MRICNN",
    "Backbone",
    "build_model",
    "imagenet_normalization",
    "model_data_config",
]

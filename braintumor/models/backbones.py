"""ImageNet backbones from torchvision's model builders, sized to our classes and channels.

One factory, :class:`Backbone`, behind every architecture torchvision builds by name
(``resnet18``, ``efficientnet_b0``, ``convnext_tiny``, ...): the final linear layer is replaced
by one with ``num_classes`` outputs, and for one-channel MRI input the first convolution is
folded to one input channel by summing its weights over RGB (a grayscale image replicated to
three channels gives the same activations; timm does the same). Weights come from
torchvision's hub cache (``pretrained=True``) or from a local file (``weights_path``), so a
machine without internet can still start from ImageNet.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import get_model, get_model_weights

from braintumor.errors import WeightsUnavailableError
from braintumor.models.data_config import DataConfig, data_config, weights_data_config
from braintumor.models.weights import reachable, read_weights_file

WEIGHTS_HOST = ("download.pytorch.org", 443)
"""Probed before a download so that an offline machine fails at once, not after a timeout."""

GRADCAM_LAYERS = ("layer4", "features", "trunk_output")
"""Grad-CAM's target, the last feature stage (before pooling), by the attribute torchvision's
families give it: ``layer4`` (ResNet, ResNeXt, Wide ResNet), ``features`` (EfficientNet,
MobileNet, ConvNeXt, DenseNet, VGG, ...), ``trunk_output`` (RegNet); the first one the model
has."""


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """The parent module, attribute name and module of the model's final ``nn.Linear``."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, getattr(parent, attr)


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    name = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, getattr(parent, attr)


def fold_to_one_channel(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` that takes one input channel, its weights summed over the old ones."""
    folded = nn.Conv2d(
        1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, conv.bias is not None, conv.padding_mode,
    )  # fmt: skip
    with torch.no_grad():
        folded.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            folded.bias.copy_(conv.bias)
    return folded


def cached_weights_file(name: str) -> Path:
    """Where torchvision keeps the default ImageNet weights of ``name``."""
    url = get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The default ImageNet weights of ``name``: from the hub cache, else downloaded."""
    weights = get_model_weights(name).DEFAULT
    cached = cached_weights_file(name)
    if not cached.is_file() and not reachable(*WEIGHTS_HOST, timeout=5.0):
        raise WeightsUnavailableError(
            f"model.net.pretrained=true needs the ImageNet weights of {name}, which are not in "
            f"the cache ({cached}) and this machine cannot reach {WEIGHTS_HOST[0]}. On a machine "
            f"with internet, download {weights.url} and copy the file here, then either put it at "
            f"{cached} or pass model.net.weights_path=/path/to/{cached.name}."
        )
    return weights.get_state_dict(progress=True, check_hash=True)


class Backbone(nn.Module):
    """A torchvision classification model with a new head.

    Parameters
    ----------
    name : a torchvision model builder name (``torchvision.models.list_models()``).
    num_classes : outputs of the new head.
    in_channels : 1 (first conv folded, see module docstring) or 3.
    pretrained : start from torchvision's default ImageNet weights.
    weights_path : start from this local file instead (the file torchvision downloads, or a
        state dict of the same architecture with its 1000-class head).
    dropout : when set, dropout of this probability before the new head.
    """

    def __init__(
        self,
        name: str,
        num_classes: int,
        in_channels: int = 3,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}.")
        self.name = name
        self.in_channels = in_channels
        self.pretrained = bool(pretrained or weights_path)
        self.model = get_model(name, weights=None)
        if weights_path:
            state = read_weights_file(weights_path)
        elif pretrained:
            state = imagenet_state_dict(name)
        else:
            state = None
        if state is not None:
            try:
                self.model.load_state_dict(state)
            except RuntimeError as error:
                raise WeightsUnavailableError(
                    f"the weights do not fit torchvision's {name}: {str(error)[:500]}"
                ) from error
        parent, attr, linear = _last_linear(self.model)
        new_head: nn.Module = nn.Linear(linear.in_features, num_classes)
        if dropout:
            new_head = nn.Sequential(nn.Dropout(dropout), new_head)
        setattr(parent, attr, new_head)
        self._head_path = f"{_module_path(self.model, parent)}{attr}"
        if in_channels == 1:
            parent, attr, conv = _first_conv(self.model)
            setattr(parent, attr, fold_to_one_channel(conv))

    @property
    def head(self) -> nn.Module:
        """The new classifier layer (trained from scratch, never frozen)."""
        return self.model.get_submodule(self._head_path)

    @property
    def gradcam_layer(self) -> str | None:
        """Dotted path (from this module) of the layer Grad-CAM explains (``GRADCAM_LAYERS``);
        ``None``: none of them, Grad-CAM takes the last ``Conv2d``."""
        for attribute in GRADCAM_LAYERS:
            if isinstance(getattr(self.model, attribute, None), nn.Module):
                return f"model.{attribute}"
        return None

    @staticmethod
    def resolve_data_config(
        name: str,
        in_channels: int = 3,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        **_: object,
    ) -> DataConfig:
        """The data config (:mod:`braintumor.models.data_config`) of torchvision's ``name``
        without building it: the input size, interpolation and crop of its default ImageNet
        weights, and their mean/std when it starts from them (``pretrained`` or
        ``weights_path``); a random network expects no particular mean/std."""
        try:
            transform = get_model_weights(name).DEFAULT.transforms()
        except (ValueError, KeyError, AttributeError):  # a builder without ImageNet weights
            return data_config()
        crop = transform.crop_size[0]
        return weights_data_config(
            in_channels, (crop, crop), transform.mean, transform.std,
            bool(pretrained or weights_path), interpolation=transform.interpolation.value,
            crop_pct=crop / transform.resize_size[0],
        )  # fmt: skip

    def data_config(self) -> DataConfig:
        """This network's data config (see :meth:`resolve_data_config`)."""
        return self.resolve_data_config(self.name, self.in_channels, self.pretrained)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters of the network's stages, input first (the top-level blocks; a
        ``features`` sequence counts block by block), for layer-wise learning-rate decay."""
        groups = []
        for name, child in self.model.named_children():
            blocks = list(child.children()) if name == "features" else [child]
            groups += [list(b.parameters()) for b in blocks]
        return [g for g in groups if g]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _module_path(root: nn.Module, module: nn.Module) -> str:
    for name, candidate in root.named_modules():
        if candidate is module:
            return f"{name}." if name else ""
    raise ValueError("module is not part of root")

"""``build_model``: one builder behind every network, like timm's ``create_model``.

A network config (``model.net``, or a checkpoint's ``hyper_parameters.net``) names its class
with ``_target_`` (Hydra's key, e.g. ``braintumor.models.backbones.Backbone``) or just its
``name``: ``cnn`` for :class:`~braintumor.models.cnn.MRICNN`, any other name a torchvision
builder (``resnet18``, ``efficientnet_b0``, ...) wrapped by
:class:`~braintumor.models.backbones.Backbone`. Its other keys are the constructor's
arguments; the number of classes and input channels come from the data.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

from braintumor.models.data_config import DataConfig, data_config, imagenet_normalization

NETWORKS = {"cnn": "braintumor.models.cnn.MRICNN"}
"""Our own networks by name; every other name is a torchvision builder (``BACKBONE``)."""
BACKBONE = "braintumor.models.backbones.Backbone"
SIZED_BY_THE_DATA = ("num_classes", "in_channels")


def _import(target: str) -> type:
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"the network config's _target_ '{target}' is not a class.") from None


def network_class(spec: Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
    """The class a network config (or a model config holding one under ``net``) names, and
    its other settings."""
    if isinstance(spec.get("net"), Mapping):
        spec = spec["net"]
    settings = dict(spec)
    target = settings.pop("_target_", None)
    if target is None:
        name = settings.get("name")
        if not name:
            raise ValueError(
                "a network config needs `_target_` (a class) or `name` ('cnn' or a torchvision "
                f"model name such as 'resnet18'); it has {sorted(settings)}."
            )
        target = NETWORKS.get(name, BACKBONE)
        if name in NETWORKS:
            del settings["name"]
    return _import(target), settings


def without_initial_weights(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` (a network config) building the architecture alone: no pretrained download or
    weights file, for a checkpoint whose own weights replace them at once (so a checkpoint
    loads on a machine without the initial weights, offline included)."""
    spec = dict(spec)
    if isinstance(spec.get("net"), Mapping):
        return {**spec, "net": without_initial_weights(spec["net"])}
    if spec.get("pretrained"):
        spec["pretrained"] = False
    if spec.get("weights_path"):
        spec["weights_path"] = None
    return spec


def build_model(spec: Mapping[str, Any], num_classes: int, in_channels: int) -> nn.Module:
    """The network of ``spec`` (``model.net``, or the model config holding it) with
    ``num_classes`` outputs and ``in_channels`` input channels.

    Parameters
    ----------
    spec : ``_target_`` or ``name`` and the constructor's arguments (see the module docstring).
        A checkpoint's copy may also hold ``num_classes`` and ``in_channels``; they must then
        agree with the arguments.
    num_classes, in_channels : from the data.

    Returns
    -------
    The ``nn.Module``, its head sized to ``num_classes``.
    """
    cls, settings = network_class(spec)
    sized = {"num_classes": int(num_classes), "in_channels": int(in_channels)}
    for key in SIZED_BY_THE_DATA:
        stored = settings.pop(key, sized[key])
        if stored != sized[key]:
            raise ValueError(
                f"the network config has {key}={stored} but the data gives {sized[key]}."
            )
    return cls(**sized, **settings)


def model_data_config(spec: Mapping[str, Any], in_channels: int) -> DataConfig:
    """The data config (:mod:`braintumor.models.data_config`) of the network ``spec`` builds,
    without building it (nor fetching weights): the network class's ``resolve_data_config``;
    for a class without one, ImageNet's mean/std when it starts from pretrained weights."""
    cls, settings = network_class(spec)
    for key in SIZED_BY_THE_DATA:
        settings.pop(key, None)
    resolve = getattr(cls, "resolve_data_config", None)
    if resolve is not None:
        return resolve(in_channels=in_channels, **settings)
    if settings.get("pretrained") or settings.get("weights_path"):
        mean, std = imagenet_normalization(in_channels)
        return data_config(mean=mean, std=std)
    return data_config()

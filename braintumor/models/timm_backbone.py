"""Any model of timm's zoo (``timm.create_model``), sized to our classes and channels.

``model=timm model.net.name=<timm name>`` (``convnext_tiny``, ``efficientnet_b0``,
``efficientnetv2_rw_s``, ``resnet50``, ``vit_small_patch16_224``, ...): timm builds the head for
``num_classes`` and adapts the first convolution to one input channel itself (summing its RGB
weights, as :mod:`braintumor.models.backbones` does for torchvision). ``drop_path_rate``
(stochastic depth) and ``dropout`` (before the head) are timm's own. Weights come from the
Hugging Face hub (``pretrained=true``, probed first so that an offline machine fails in seconds)
or from a local ``.safetensors``/``.pth`` file (``weights_path``) of the same architecture; timm
drops the file's ImageNet head and adapts its first convolution. The data config (input size,
interpolation, crop, and the weights' mean/std when pretrained) is timm's pretrained config,
read without building the model.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from braintumor.constraints import NULL, Either, Interval, check
from braintumor.errors import UsageError, WeightsUnavailableError
from braintumor.models.data_config import DataConfig, data_config, weights_data_config
from braintumor.models.weights import reachable, read_weights_file

RATES = {"dropout": Either((NULL, Interval(0, 1, closed="left"))),
         "drop_path_rate": Either((NULL, Interval(0, 1, closed="left")))}  # fmt: skip
"""A share of units or paths dropped: in [0, 1), or null for none."""
HUB_HOST = ("huggingface.co", 443)
"""Probed before a download so that an offline machine fails at once, not after a timeout."""


def check_timm_name(name: str) -> None:
    """Refuse a name timm does not know, naming the closest ones it does."""
    if timm.is_model(name):
        return
    known = timm.list_models()
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    stem = name.split("_")[0]
    close = close or timm.list_models(f"{stem}*")[:5]
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise UsageError(
        f"model.net.name='{name}' is not a timm model ({len(known)} are: timm.list_models()).{hint}"
    )


def _create(
    name: str, pretrained: bool, overlay: dict[str, Any] | None, **kwargs: Any
) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=pretrained, pretrained_cfg_overlay=overlay,
                                 **kwargs)  # fmt: skip
    except RuntimeError as error:  # load_state_dict: another architecture or class count
        text = " ".join(str(error).split())
        raise WeightsUnavailableError(
            f"the weights do not fit timm's {name} (its head excepted): {text[:600]}"
        ) from error


def check_fits(name: str, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Refuse weights that are not ``name``'s: timm loads a file without its head leniently,
    so a file of another architecture would leave the network random without a word. The
    head (new classes) and the first convolution's input channels may differ."""
    classifier = model.get_classifier()
    prefix = next((n for n, m in model.named_modules() if m is classifier), "")
    head = {f"{prefix}.{k}" if prefix else k for k in classifier.state_dict()}
    first_conv = f"{(getattr(model, 'pretrained_cfg', None) or {}).get('first_conv', '')}.weight"
    own = {k: v for k, v in model.state_dict().items() if k not in head}
    given = {k: v for k, v in state.items() if k not in head}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = sorted(k for k in set(own) & set(given)
                    if k != first_conv and own[k].shape != given[k].shape)  # fmt: skip
    if missing or unexpected or shapes:

        def listed(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        problems = [f"{label} keys: {listed(keys)}" for label, keys in
                    (("Missing", missing), ("Unexpected", unexpected), ("Other-shaped", shapes))
                    if keys]  # fmt: skip
        raise WeightsUnavailableError(
            f"the weights do not fit timm's {name} (its head excepted): {'; '.join(problems)}. "
            "Give model.net.weights_path a file of the same architecture."
        )


def cached_weights(name: str) -> Path | None:
    """The file of ``name``'s default pretrained weights in the Hugging Face cache (or torch's
    hub cache, for weights timm fetches by URL), ``None`` when it is not there."""
    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return None
    if getattr(cfg, "hf_hub_id", None):
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(
                cfg.hf_hub_id, filename, cache_dir=os.environ.get("HF_HUB_CACHE") or None
            )
            if isinstance(found, str):
                return Path(found)
    url = getattr(cfg, "url", None)
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        return candidate if candidate.is_file() else None
    return None


class TimmBackbone(nn.Module):
    """A timm model with its head sized to ``num_classes``.

    Parameters
    ----------
    name : a timm model name (``timm.list_models()``).
    num_classes : outputs of the head.
    in_channels : input channels (1: timm adapts the first convolution).
    pretrained : start from timm's default pretrained weights (the Hugging Face hub).
    weights_path : start from this local ``.safetensors`` or ``.pth`` file instead.
    dropout : dropout before the head (timm's ``drop_rate``).
    drop_path_rate : stochastic depth (timm's ``drop_path_rate``), for the models that have it.
    """

    def __init__(
        self,
        name: str,
        num_classes: int,
        in_channels: int = 3,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        dropout: float | None = None,
        drop_path_rate: float | None = None,
    ) -> None:
        super().__init__()
        check_timm_name(name)
        check("model.net", {"dropout": dropout, "drop_path_rate": drop_path_rate}, RATES)
        self.name = name
        self.in_channels = in_channels
        self.pretrained = bool(pretrained or weights_path)
        kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_channels}
        if dropout:
            kwargs["drop_rate"] = float(dropout)
        if drop_path_rate:
            kwargs["drop_path_rate"] = float(drop_path_rate)
        if weights_path:
            state = read_weights_file(weights_path)  # refused here when it does not exist
            self.model = _create(name, True, {"file": str(weights_path)}, **kwargs)
            check_fits(name, self.model, state)
        elif pretrained:
            self.model = self._from_hub(name, kwargs)
        else:
            self.model = timm.create_model(name, pretrained=False, **kwargs)

    @staticmethod
    def _from_hub(name: str, kwargs: dict[str, Any]) -> nn.Module:
        """The default pretrained weights of ``name``: downloaded (or from the hub cache) when
        the hub answers; offline, the cached file, else one clear error naming
        ``weights_path`` (at once: no retries against a closed network)."""
        if reachable(*HUB_HOST):
            return _create(name, True, None, **kwargs)
        cached = cached_weights(name)
        if cached is not None:
            return _create(name, True, {"file": str(cached)}, **kwargs)
        cfg = timm.get_pretrained_cfg(name)
        source = (
            (getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None) or name) if cfg else name
        )
        raise WeightsUnavailableError(
            f"model.net.pretrained=true needs timm's weights of {name} ({source}), which are not "
            f"in the Hugging Face cache and this machine cannot reach {HUB_HOST[0]}. On a "
            "machine with internet, download the model's model.safetensors and pass "
            "model.net.weights_path=/path/to/it."
        )

    @property
    def head(self) -> nn.Module:
        """The classifier layer (trained from scratch, never frozen)."""
        return self.model.get_classifier()

    @property
    def fixed_input_size(self) -> int | None:
        """The only input side the network takes (token models such as ViT), else ``None``."""
        cfg = getattr(self.model, "pretrained_cfg", None) or {}
        embed = getattr(self.model, "patch_embed", None)
        if not cfg.get("fixed_input_size") or getattr(embed, "dynamic_img_size", False):
            return None
        size = getattr(embed, "img_size", None) or cfg.get("input_size", (0, 0, 0))[-2:]
        return int(size[-1]) if size else None

    @property
    def gradcam_layer(self) -> str | None:
        """The last feature stage timm reports (``feature_info``) when its output is a
        ``(N, C, H, W)`` feature map; ``None`` for token and channels-last models (ViT, Swin):
        Grad-CAM then takes the last ``Conv2d``. Found once, with one small forward pass."""
        if "_gradcam_layer" not in self.__dict__:
            self.__dict__["_gradcam_layer"] = self._feature_map_stage()
        return self.__dict__["_gradcam_layer"]

    def _feature_map_stage(self) -> str | None:
        info = getattr(self.model, "feature_info", None) or []
        last = info[-1] if info else None
        if not isinstance(last, dict) or not last.get("module"):
            return None
        module = self.model.get_submodule(last["module"])
        size = (getattr(self.model, "pretrained_cfg", None) or {}).get("input_size") or (
            3,
            224,
            224,
        )
        shapes: list[torch.Size] = []
        hook = module.register_forward_hook(lambda _m, _i, out: shapes.append(out.shape))
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                self.model(torch.zeros(1, self.in_channels, size[1], size[2]))
        except Exception:  # a model that needs other input: no stage, the last Conv2d
            return None
        finally:
            hook.remove()
            self.model.train(was_training)
        if shapes and len(shapes[-1]) == 4 and shapes[-1][1] == last.get("num_chs"):
            return f"model.{last['module']}"
        return None

    @staticmethod
    def resolve_data_config(
        name: str,
        in_channels: int = 3,
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        **_: object,
    ) -> DataConfig:
        """The data config (:mod:`braintumor.models.data_config`) of timm's ``name`` without
        building it: its pretrained config's input size, interpolation and crop, and its
        mean/std when it starts from those weights; a random network expects no mean/std."""
        check_timm_name(name)
        cfg = timm.get_pretrained_cfg(name)
        if cfg is None:
            return data_config()
        return weights_data_config(
            in_channels, cfg.input_size[1:], cfg.mean, cfg.std, bool(pretrained or weights_path),
            interpolation=cfg.interpolation or "bilinear", crop_pct=cfg.crop_pct,
        )  # fmt: skip

    def data_config(self) -> DataConfig:
        """This network's data config (see :meth:`resolve_data_config`)."""
        return self.resolve_data_config(self.name, self.in_channels, self.pretrained)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters of the network's stages, input first: timm's own grouping
        (``group_matcher``, the one its layer-decay optimizers use), else its top-level
        blocks."""
        params = dict(self.model.named_parameters())
        matcher = getattr(self.model, "group_matcher", None)
        if matcher is not None:
            from timm.models import group_parameters

            grouped = group_parameters(self.model, matcher(coarse=False))
            return [
                [params[n] for n in names if n in params] for _, names in sorted(grouped.items())
            ]
        return [list(c.parameters()) for c in self.model.children() if any(c.parameters())]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

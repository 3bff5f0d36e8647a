"""Initial weights from outside: the network probe before a download, and a local weights file
(``model.net.weights_path``), shared by the torchvision and timm backbones."""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from braintumor.errors import WeightsUnavailableError


def reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether ``host:port`` answers within ``timeout`` seconds: probed before a download, so
    that an offline machine fails at once, not after the download's own timeouts."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a local ``.safetensors`` or ``.pth`` file (bare, or under
    ``state_dict`` or ``model``, as timm's own loader accepts)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"model.net.weights_path '{path}' does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"'{path}' holds a {type(state).__name__}, not a state dict.")
    return state

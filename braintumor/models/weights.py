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
    if path.is_dir():
        raise WeightsUnavailableError(
            f"model.net.weights_path '{path}' is a folder: give the weights file in it."
        )
    if not path.is_file():
        raise WeightsUnavailableError(f"model.net.weights_path '{path}' does not exist.")
    unreadable = (
        f"model.net.weights_path '{path}' is not a readable weights file (%s): it is empty, "
        "truncated or of another format. Copy it again, or give a .safetensors or .pth file "
        "of the same architecture."
    )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise WeightsUnavailableError(unreadable % str(error).splitlines()[0]) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle of anything, a text file, a truncated archive
        text = str(error).strip()
        detail = f"{type(error).__name__}: {text.splitlines()[0][:160]}" if text else ""
        raise WeightsUnavailableError(unreadable % (detail or type(error).__name__)) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"'{path}' holds a {type(state).__name__}, not a state dict.")
    return state

"""Test-time augmentation: deterministic views, averaged in one batched forward pass."""

from __future__ import annotations

import pytest
import torch

from braintumor.models.tta import tta_logits, views


def test_views_are_the_image_its_mirror_and_shifted_copies():
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    assert torch.equal(views(images, "none"), images)
    flip = views(images, "flip")
    assert flip.shape == (4, 1, 8, 8) and torch.equal(flip[2:], images.flip(-1))
    shifted = views(images, "flip_shift")
    assert shifted.shape == (20, 1, 8, 8)
    right = shifted[4:6]  # shifted right by one pixel: the first column is the fill value
    assert torch.equal(right[..., 1:], images[..., :-1])


def test_tta_logits_average_the_views_in_one_call():
    calls = []

    def forward(x):
        calls.append(len(x))
        return x.mean(dim=(2, 3)).repeat(1, 3)  # a "model" that sees the mean pixel

    images = torch.rand(5, 1, 16, 16)
    out = tta_logits(forward, images, "flip")
    assert calls == [10] and out.shape == (5, 3)
    assert torch.allclose(out, forward(images))  # a mirror has the same mean
    with pytest.raises(ValueError, match=r"eval\.tta must be one of"):
        tta_logits(forward, images, "rotate")

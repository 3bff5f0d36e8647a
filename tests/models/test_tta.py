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


def test_a_predictor_applies_the_tta_its_calibration_was_fitted_with(trained_ckpt):
    from braintumor.inference.torch_predictor import TorchPredictor

    predictor = TorchPredictor.from_checkpoint(trained_ckpt, device="cpu")
    batch = torch.rand(3, predictor.channels, predictor.image_size, predictor.image_size)
    plain = predictor.predict_batch(batch)
    predictor.calibration = {**predictor.calibration, "tta": "flip", "temperature": 2.0}
    with torch.no_grad():
        logits = tta_logits(predictor.module, batch, "flip")
    expected = torch.softmax(logits / 2.0, dim=1).numpy()
    got = predictor.predict_batch(batch)
    assert got == pytest.approx(expected, abs=1e-5) and got.sum(1) == pytest.approx(1.0)
    assert got != pytest.approx(plain, abs=1e-4)

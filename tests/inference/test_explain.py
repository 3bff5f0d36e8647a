"""Grad-CAM: maps at the image's size that point at the evidence for a class."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from braintumor.inference.explain import find_layer, grad_cam, overlay, resize_map, target_layer
from braintumor.models.cnn import MRICNN
from braintumor.training.module import MRIClassifier

SIZE = 40
LESION_RADIUS = 5
SQUARE_HALF = 5  # distractor squares: bigger and as bright as the lesion


def scene(rng: np.random.Generator, lesion: bool) -> tuple[np.ndarray, tuple[int, int] | None]:
    """A noisy image with two bright blobs at random, non-overlapping places.

    Class 1 ("lesion"): one disk and one square. Class 0: two squares. Brightness, blob count
    and positions carry no class information; only the disk's shape does, so a model that
    learned the task has its evidence for class 1 on the disk.
    """
    image = rng.normal(0.3, 0.08, (SIZE, SIZE))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    placed: list[tuple[int, int, int]] = []

    def place(radius: int) -> tuple[int, int]:
        while True:
            cy, cx = (int(v) for v in rng.integers(radius + 1, SIZE - radius - 1, 2))
            apart = [max(abs(cy - y), abs(cx - x)) > radius + r + 2 for y, x, r in placed]
            if all(apart):
                placed.append((cy, cx, radius))
                return cy, cx

    center = None
    if lesion:
        center = place(LESION_RADIUS)
        image[(yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= LESION_RADIUS**2] = 0.9
    for _ in range(1 if lesion else 2):
        cy, cx = place(SQUARE_HALF)
        image[cy - SQUARE_HALF : cy + SQUARE_HALF, cx - SQUARE_HALF : cx + SQUARE_HALF] = 0.9
    return image.clip(0, 1).astype(np.float32), center


def batch_of(images: list[np.ndarray]) -> torch.Tensor:
    return (torch.from_numpy(np.stack(images))[:, None] - 0.5) / 0.5


@pytest.fixture(scope="module")
def lesion_model() -> MRICNN:
    """MRICNN trained until it tells lesion from distractor scenes (held-out accuracy >= 0.95)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is ~10x faster on a busy 2-core box
    try:
        net = _train_lesion_model()
    finally:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(99)
    held_out = [scene(rng, i % 2 == 1)[0] for i in range(40)]
    with torch.no_grad():
        accuracy = (net(batch_of(held_out)).argmax(1) == torch.arange(40) % 2).float().mean()
    assert accuracy >= 0.95, f"the lesion model did not learn the task (accuracy {accuracy:.2f})"
    return net


def _train_lesion_model() -> MRICNN:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    scenes = [scene(rng, i % 2 == 1)[0] for i in range(480)]
    x, y = batch_of(scenes), torch.arange(480) % 2
    net = MRICNN(2, 1, widths=(8, 16, 32), dropout=0.0)
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(6):
        for idx in torch.randperm(len(x)).split(32):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def peaks_in_lesion(maps: torch.Tensor, centers: list[tuple[int, int]]) -> int:
    hits = 0
    for cam, (cy, cx) in zip(maps, centers, strict=True):
        full = resize_map(cam, (SIZE, SIZE))
        assert full.shape == (SIZE, SIZE)
        py, px = np.unravel_index(full.argmax(), full.shape)
        hits += (py - cy) ** 2 + (px - cx) ** 2 <= (LESION_RADIUS + 2) ** 2
    return hits


def test_gradcam_peaks_inside_the_lesion(lesion_model):
    rng = np.random.default_rng(1)
    images, centers = zip(*(scene(rng, lesion=True) for _ in range(40)), strict=True)
    layer = find_layer(lesion_model, "features.-1.-2")
    maps, _ = grad_cam(lesion_model, layer, batch_of(list(images)), [1] * 40)
    assert maps.shape == (40, 10, 10) and float(maps.max()) == pytest.approx(1.0)
    assert peaks_in_lesion(maps, list(centers)) >= 36
    # the evidence for "no lesion" is not on the lesion, and an untrained net is no better
    # than chance: the test above can fail
    maps_other, _ = grad_cam(lesion_model, layer, batch_of(list(images)), [0] * 40)
    assert peaks_in_lesion(maps_other, list(centers)) <= 8
    torch.manual_seed(1)
    untrained = MRICNN(2, 1, widths=(8, 16, 32), dropout=0.0).eval()
    maps_random, _ = grad_cam(untrained, find_layer(untrained, "features.-1.-2"),
                              batch_of(list(images)), [1] * 40)  # fmt: skip
    assert peaks_in_lesion(maps_random, list(centers)) < 36


def test_gradcam_equals_the_definition(lesion_model):
    """Batched hook + autograd result == per-image gradients computed by hand."""
    rng = np.random.default_rng(2)
    x = batch_of([scene(rng, lesion=bool(i % 2))[0] for i in range(4)])
    layer = lesion_model.features[-1]
    maps, _ = grad_cam(lesion_model, layer, x, [1, 0, 1, 0])
    for i, target in enumerate([1, 0, 1, 0]):
        features = lesion_model.features(x[i : i + 1]).requires_grad_(True)
        logit = lesion_model.head(lesion_model.pool(features))[0, target]
        (grad,) = torch.autograd.grad(logit, features)
        cam = torch.relu((grad.mean((2, 3), keepdim=True) * features).sum(1))[0].detach()
        assert torch.allclose(maps[i], cam / cam.max().clamp(min=1e-12), atol=1e-5)


def test_target_layer_comes_from_the_config_or_falls_back_to_the_last_conv():
    prep = {"class_names": ["a", "b"], "image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]}
    net = {"_target_": "braintumor.models.cnn.MRICNN", "num_classes": 2, "widths": [4, 8]}
    opt = {"_target_": "torch.optim.Adam", "_partial_": True}
    configured = MRIClassifier(net, opt, prep, gradcam_layer="net.features.-1.-2")
    assert target_layer(configured) is configured.net.features[1][2]
    old = MRIClassifier(net, opt, prep)  # checkpoints from before gradcam_layer existed
    assert target_layer(old) is old.net.features[1][0]
    with pytest.raises(ValueError, match=r"no layer 'net\.nope'"):
        find_layer(old, "net.nope")


def test_overlay_has_the_image_size():
    image = torch.randint(0, 255, (1, 30, 50), dtype=torch.uint8)
    cam = resize_map(torch.rand(4, 4), (30, 50))
    picture = overlay(image, cam)
    assert isinstance(picture, Image.Image) and picture.size == (50, 30) and picture.mode == "RGB"

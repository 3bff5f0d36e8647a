import json
import logging
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F
from torchvision.transforms import v2

from braintumor import pipeline
from braintumor.data.batch_augment import BatchAugment
from braintumor.data.cache import cache_key, decode_all, decode_resized
from braintumor.data.datamodule import MRIDataModule


def _dm(root, cache, tmp_path, **kwargs):
    defaults = dict(image_size=32, batch_size=8, num_workers=0, val_fraction=0.25,
                    test_fraction=0.25, decoded_cache_dir=tmp_path / "decoded")  # fmt: skip
    dm = MRIDataModule(root, cache=cache, **{**defaults, **kwargs})
    dm.setup("fit")
    for split in ("train", "val", "test"):
        dm._decode(split)
    return dm


def _paths(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpeg"))


def test_memory_disk_and_none_give_identical_tensors(tiny_root, tmp_path):
    augment = [v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=10, translate=(0.1, 0.1))]
    dms = {c: _dm(tiny_root, c, tmp_path, augment=augment) for c in ("none", "memory", "disk")}
    assert dms["none"].datasets["train"].images is None
    for split in ("train", "val", "test"):
        for i in range(len(dms["none"].datasets[split])):
            items = []
            for dm in dms.values():
                torch.manual_seed(i)
                items.append(dm.datasets[split][i])
            assert all(torch.equal(items[0][0], x) and items[0][1] == y for x, y in items[1:])


def test_disk_cache_is_reused_then_rebuilt_for_a_changed_file(tiny_copy, tmp_path, caplog):
    paths, cache_dir = _paths(tiny_copy), tmp_path / "decoded"
    first, errors = decode_all(tiny_copy, paths, 1, 24, "disk", cache_dir)
    assert not errors and len(first) == len(paths)
    array_file = cache_dir / f"{cache_key(tiny_copy, 1, 24)}.npy"
    written = array_file.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="braintumor.data.cache"):
        again, _ = decode_all(tiny_copy, paths, 1, 24, "disk", cache_dir)
    assert "decoded" not in caplog.text  # a hit: nothing decoded, nothing written
    assert array_file.stat().st_mtime_ns == written
    assert all(torch.equal(first[p], again[p]) for p in paths)
    changed = tiny_copy / paths[3]
    Image.fromarray(np.full((40, 40), 255, dtype=np.uint8)).save(changed, format="JPEG")
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="braintumor.data.cache"):
        rebuilt, _ = decode_all(tiny_copy, paths, 1, 24, "disk", cache_dir)
    assert "decoded 1 image(s)" in caplog.text
    assert int(rebuilt[paths[3]].min()) >= 250  # the new, white image
    assert torch.equal(rebuilt[paths[3]], decode_resized(changed, 1, 24))
    assert all(torch.equal(first[p], rebuilt[p]) for p in paths if p != paths[3])
    entries = json.loads(array_file.with_suffix(".json").read_text())["scans"]
    assert [p for p, *_ in entries] == paths


def test_disk_cache_keeps_other_splits_rows_and_pickles_as_a_file_name(tiny_root, tmp_path):
    paths, cache_dir = _paths(tiny_root), tmp_path / "decoded"
    decode_all(tiny_root, paths[:10], 1, 16, "disk", cache_dir)
    decode_all(tiny_root, paths[10:], 1, 16, "disk", cache_dir)
    both, _ = decode_all(tiny_root, paths, 1, 16, "disk", cache_dir)
    assert len(both) == len(paths) and both.file is not None
    blob = pickle.dumps(both)
    assert len(blob) < both.nbytes / 4  # the array is not copied into the pickle
    restored = pickle.loads(blob)
    assert torch.equal(restored[paths[0]], both[paths[0]])


def test_corrupt_image_is_reported_not_fatal(tiny_copy, tmp_path):
    files = sorted(tiny_copy.rglob("*.jpeg"))
    files[0].write_bytes(b"garbage")  # the check at startup is off: the cache meets it itself
    for cache in ("memory", "disk"):
        with pytest.warns(UserWarning, match=r"skipping 1 unreadable image"):
            dm = _dm(tiny_copy, cache, tmp_path, check_images=False, group_near_duplicates=False)
        assert [s.path for s, _ in dm.skipped] == [str(files[0].relative_to(tiny_copy))]
        assert sum(len(d) for d in dm.datasets.values()) == 63
        for _ in dm.train_dataloader():
            pass


def test_cached_and_uncached_runs_train_identically(make_cfg):
    metrics = {}
    for cache in ("none", "memory"):
        cfg = make_cfg(f"data.cache={cache}", "logger=none", "~callbacks.lr_monitor",
                       "trainer.max_epochs=2", run=cache)  # fmt: skip
        metrics[cache] = pipeline.train(cfg)
    assert "train/loss" in metrics["none"] and "val/f1_best" in metrics["none"]
    assert metrics["none"] == metrics["memory"]


def test_augment_on_device_trains_and_augments_each_image(make_cfg, tiny_root, tmp_path):
    dm = _dm(tiny_root, "memory", tmp_path, augment=[v2.RandomHorizontalFlip(p=0.5)],
             augment_on="device")  # fmt: skip
    images = torch.stack([dm.datasets["train"][i][0] for i in range(8)])
    assert images.dtype == torch.uint8
    torch.manual_seed(0)
    out = dm.augment_batch(images.repeat(8, 1, 1, 1)[:16] * 0 + images[:1])
    assert out.dtype == torch.float32 and out.shape == (16, 1, 32, 32)
    flipped = [torch.equal(o, out[0]) for o in out]
    assert 0 < sum(flipped) < len(flipped)  # not one random draw for the whole batch
    for mode in ("device", "batch"):
        cfg = make_cfg(f"data.augment_on={mode}", "data.crop_margin=0.25", run=mode)
        metrics = pipeline.train(cfg)
        assert 0.0 <= metrics["val/f1_best"] <= 1.0 and np.isfinite(metrics["train/loss"])


def test_batch_augment_draws_per_image_and_is_identity_when_off():
    images = torch.randint(0, 256, (16, 1, 24, 24), dtype=torch.uint8)
    same = BatchAugment(24)(images)
    assert same.shape == (16, 1, 24, 24) and (same * 255 - images).abs().max() < 1
    torch.manual_seed(0)
    flipped = BatchAugment(24, hflip=0.5)(images)
    mirrored = [
        torch.allclose(f, s.flip(-1), atol=1e-5) for f, s in zip(flipped, same, strict=True)
    ]
    assert 0 < sum(mirrored) < 16  # each image draws its own flip
    out = BatchAugment(20, degrees=10, translate=0.1, brightness=0.3, crop_scale=(0.5, 1.0))(images)
    assert out.shape == (16, 1, 20, 20) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [1, 7, 32])
def test_batch_augment_grid_is_affine_grid(size):
    augment = BatchAugment(size, hflip=0.5, degrees=30, translate=0.2, scale=(0.7, 1.3),
                           crop_scale=(0.5, 1.0), crop_ratio=(0.8, 1.25))  # fmt: skip
    theta = augment.theta(5, torch.device("cpu"))
    expected = F.affine_grid(theta, [5, 1, size, size], align_corners=False)
    assert torch.allclose(augment.grid(theta), expected, atol=1e-6)


def test_bad_cache_settings_are_rejected(tiny_root):
    with pytest.raises(ValueError, match=r"data\.cache must be one of"):
        MRIDataModule(tiny_root, cache="ram")
    with pytest.raises(ValueError, match=r"data\.augment_on"):
        MRIDataModule(tiny_root, augment_on="gpu")
    with pytest.raises(ValueError, match="decoded_cache_dir"):
        decode_all(tiny_root, _paths(tiny_root)[:1], 1, 16, "disk", None)

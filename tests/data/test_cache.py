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

from braintumor.data.augmentation import BatchAugment
from braintumor.data.cache import cache_key, decode_all, decode_resized
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.skipped import read_skipped
from braintumor.pipeline.train import train


def _dm(root, cache, tmp_path, **kwargs):
    defaults = dict(image_size=32, batch_size=8, num_workers=0, val_fraction=0.25,
                    test_fraction=0.25, decoded_cache_dir=tmp_path / "decoded")  # fmt: skip
    dm = MRIDataModule(root, cache=cache, **{**defaults, **kwargs})
    dm.setup("fit")  # decodes every split into the cache
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
    array_file = first.file
    assert array_file.name.startswith(cache_key(tiny_copy, 1, 24))
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
    index = json.loads((cache_dir / f"{cache_key(tiny_copy, 1, 24)}.json").read_text())
    assert [p for p, *_ in index["scans"]] == paths and index["array"] == rebuilt.file.name
    assert sorted(f.name for f in cache_dir.iterdir()) == sorted(  # the old build is gone
        [rebuilt.file.name, f"{cache_key(tiny_copy, 1, 24)}.json"]
    )


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
        assert [s.path for s, _ in dm.catalog.skipped] == [str(files[0].relative_to(tiny_copy))]
        assert sum(len(d) for d in dm.datasets.values()) == 63
        for _ in dm.train_dataloader():
            pass


def test_cached_and_uncached_runs_train_identically(make_cfg, tmp_path):
    metrics = {}
    for cache in ("none", "memory"):
        cfg = make_cfg(f"data.cache={cache}", "logger=none", "~callbacks.lr_monitor",
                       "trainer.max_epochs=2", run=cache)  # fmt: skip
        metrics[cache] = train(cfg)
    assert "train/loss" in metrics["none"] and "val/f1_macro_best" in metrics["none"]
    assert metrics["none"] == metrics["memory"]
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.ckpt", map_location="cpu")
               ["state_dict"] for run in ("none", "memory")]  # fmt: skip
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(v, weights[1][k]) for k, v in weights[0].items())  # the same weights


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
        metrics = train(cfg)
        assert 0.0 <= metrics["val/f1_macro_best"] <= 1.0 and np.isfinite(metrics["train/loss"])


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


_KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
from braintumor.data.cache import decode_all

real_replace = Path.replace
def killed(self, target):  # the machine dies as the new cache is being published
    if str(target).endswith(".json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(self, target)
Path.replace = killed
root, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
paths = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpeg"))[::-1]
decode_all(root, paths, 1, 16, "disk", cache_dir)
"""


def test_a_cache_build_killed_while_publishing_leaves_the_right_pixels_and_no_orphans(
    tiny_copy, tmp_path
):
    import subprocess
    import sys

    from tests.conftest import ROOT

    paths, cache_dir = _paths(tiny_copy), tmp_path / "decoded"
    decode_all(tiny_copy, paths, 1, 16, "disk", cache_dir)
    changed = tiny_copy / paths[5]  # a changed file: the next run must build anew
    Image.fromarray(np.full((40, 40), 255, dtype=np.uint8)).save(changed, format="JPEG")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(tiny_copy), str(cache_dir)],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]
    again, errors = decode_all(tiny_copy, paths, 1, 16, "disk", cache_dir)
    truth, _ = decode_all(tiny_copy, paths, 1, 16, "memory")
    assert not errors and all(torch.equal(again[p], truth[p]) for p in paths)
    key = cache_key(tiny_copy, 1, 16)
    assert sorted(f.name for f in cache_dir.iterdir()) == sorted([again.file.name, f"{key}.json"])


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_behind(tiny_root, tmp_path, monkeypatch):
    import errno

    from braintumor.errors import DataError

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    cache_dir = tmp_path / "decoded"
    with pytest.raises(DataError, match=r"not enough disk space.*data.cache=memory"):
        decode_all(tiny_root, _paths(tiny_root), 1, 16, "disk", cache_dir)
    assert list(cache_dir.iterdir()) == []


def test_an_image_that_fails_in_the_cache_build_is_in_skipped_images_not_in_split_csv(
    make_cfg, tiny_copy, tmp_path
):
    victim = sorted(tiny_copy.rglob("*.jpeg"))[7]
    victim.write_bytes(b"garbage")  # the startup check is off: the cache build meets it
    quiet = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples"]
    cfg = make_cfg("data.check_images=false", "data.group_near_duplicates=false", *quiet,
                   root=tiny_copy)  # fmt: skip
    with pytest.warns(UserWarning, match="skipping 1 unreadable"):
        train(cfg)
    run_dir = tmp_path / "run"
    name = str(victim.relative_to(tiny_copy))
    assert name not in (run_dir / "split.csv").read_text()
    assert [p for p, _ in read_skipped(run_dir / "skipped_images.csv")] == [name]


def test_an_image_deleted_mid_run_without_a_cache_is_recorded_not_fatal(tiny_copy, tmp_path):
    from braintumor.data.skipped import write_skipped

    dm = _dm(tiny_copy, "none", tmp_path, group_near_duplicates=False)
    log = write_skipped(tmp_path / "skipped_images.csv", [])
    for dataset in dm.datasets.values():
        dataset.skipped_log = log
    gone = dm.datasets["train"].scans[0]
    (tiny_copy / gone.path).unlink()
    with pytest.warns(UserWarning, match="during training"):
        seen = sum(len(y) for _, y in dm.train_dataloader())
    assert seen == len(dm.datasets["train"]) - 1
    assert [p for p, _ in read_skipped(log)] == [gone.path]


def test_skipped_images_csv_survives_quotes_and_commas(tmp_path):
    from braintumor.data.skipped import write_skipped

    rows = [('odd "name", here.jpeg', 'OSError: bad "header", sorry')]
    assert read_skipped(write_skipped(tmp_path / "skipped_images.csv", rows)) == rows

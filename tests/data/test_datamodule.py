import re
import shutil
from collections import Counter

import pytest
import torch
from torchvision.transforms import v2

from braintumor.data.datamodule import MRIDataModule
from braintumor.errors import DataError


def _dm(root, **kwargs):
    defaults = dict(
        image_size=32, batch_size=8, num_workers=0, val_fraction=0.25, test_fraction=0.25
    )
    dm = MRIDataModule(root, **{**defaults, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_folder_layout_split_sizes_and_batches(tiny_root):
    dm = _dm(tiny_root)
    assert dm.num_classes == 4 and dm.class_names == sorted(dm.class_names)
    sizes = {k: len(d) for k, d in dm.datasets.items()}
    assert sizes == {"train": 32, "val": 16, "test": 16}
    for split in ("val", "test"):  # stratified: 4 per class
        assert set(Counter(dm.datasets[split].targets).values()) == {4}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= -1.01 and x.max() <= 1.01  # normalized with mean 0.5, std 0.5


def test_three_channels(tiny_root):
    dm = _dm(tiny_root, channels=3, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape[1] == 3
    assert dm.preprocessing.mean == (0.485, 0.456, 0.406)


@pytest.mark.parametrize("augment_on", ["loader", "batch"])
def test_eval_transforms_are_deterministic_and_train_augments(tiny_root, augment_on):
    dm = _dm(tiny_root, augment=[v2.RandomAffine(degrees=30, translate=(0.2, 0.2))],
             augment_on=augment_on)  # fmt: skip
    a, b = dm.datasets["val"][0][0], dm.datasets["val"][0][0]
    assert torch.equal(a, b)
    torch.manual_seed(0)
    train = dm.datasets["train"]
    c, d = train.__getitems__([0, 1])[0][0], train.__getitems__([0, 1])[0][0]
    assert c.dtype == torch.float32 and not torch.equal(c, d)


def test_split_file_reproduces_the_split(tiny_root, tmp_path):
    first = _dm(tiny_root, split_seed=1)
    path = first.save_split(tmp_path / "split.csv")
    again = _dm(tiny_root, split_seed=999, split_file=path)
    other = _dm(tiny_root, split_seed=999)
    assert [s.path for s in again.datasets["test"].scans] == [
        s.path for s in first.datasets["test"].scans
    ]
    assert [s.path for s in other.datasets["test"].scans] != [
        s.path for s in first.datasets["test"].scans
    ]


def test_split_file_from_other_data_is_rejected(tiny_root, tmp_path):
    path = _dm(tiny_root).save_split(tmp_path / "split.csv")
    text = path.read_text().replace("case_0001", "case_9999")
    path.write_text(text)
    with pytest.raises(DataError, match="missing under"):
        _dm(tiny_root, split_file=path)


def _presplit(tiny_root, tmp_path, with_val=True):
    root = tmp_path / "presplit"
    for class_dir in sorted(p for p in tiny_root.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpeg"))
        groups = {"train": files[:10], "val": files[10:13], "test": files[13:]}
        for split, chosen in groups.items():
            if split == "val" and not with_val:
                split = "train"
            (root / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            for f in chosen:
                shutil.copy(f, root / split / class_dir.name / f.name)
    return root


def test_presplit_layout(tiny_root, tmp_path):
    dm = _dm(_presplit(tiny_root, tmp_path), layout="presplit")
    assert {k: len(d) for k, d in dm.datasets.items()} == {"train": 40, "val": 12, "test": 12}
    assert all(s.path.startswith("test/") for s in dm.datasets["test"].scans)


def test_presplit_without_val_carves_it_from_train(tiny_root, tmp_path):
    dm = _dm(_presplit(tiny_root, tmp_path, with_val=False), layout="presplit", val_fraction=0.2)
    sizes = {k: len(d) for k, d in dm.datasets.items()}
    assert sizes["test"] == 12 and sizes["train"] + sizes["val"] == 52
    assert set(Counter(dm.datasets["val"].targets)) == {0, 1, 2, 3}
    assert all(s.path.startswith("train/") for s in dm.datasets["val"].scans)


def test_presplit_class_mismatch_names_the_classes(tiny_root, tmp_path):
    root = _presplit(tiny_root, tmp_path)
    victim = sorted((root / "test").iterdir())[0]
    shutil.rmtree(victim)
    (root / "val" / "Extra T2").mkdir()
    shutil.copy(next(root.rglob("*.jpeg")), root / "val" / "Extra T2" / "x.jpeg")
    with pytest.raises(DataError) as error:
        _dm(root, layout="presplit")
    message = str(error.value)
    assert victim.name in message and "Extra T2" in message


def test_unreadable_images_are_skipped_with_a_warning(tiny_copy):
    files = sorted(tiny_copy.rglob("*.jpeg"))
    files[0].write_bytes(files[0].read_bytes()[:200])  # truncated
    files[5].write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"skipping 2 unreadable image\(s\) of 64") as record:
        dm = _dm(tiny_copy)
    assert str(files[0]) in str(record[0].message)
    assert sum(len(d) for d in dm.datasets.values()) == 62
    assert {s.path for s, _ in dm.catalog.skipped} == {
        str(f.relative_to(tiny_copy)) for f in (files[0], files[5])
    }
    for _ in dm.train_dataloader():  # a full epoch without a crash
        pass


def test_bad_settings_are_rejected(tiny_root):
    with pytest.raises(ValueError, match="layout"):
        MRIDataModule(tiny_root, layout="zip")
    with pytest.raises(ValueError, match="channels"):
        MRIDataModule(tiny_root, channels=2)
    with pytest.raises(ValueError, match="3 channels"):
        MRIDataModule(tiny_root, channels=3, mean=[0.1, 0.2])


def test_synthetic_data_is_generated_on_first_use(tmp_path):
    dm = _dm(
        tmp_path / "demo", synthetic=dict(num_classes=3, per_class=8, min_size=32, max_size=32)
    )
    assert dm.num_classes == 3 and sum(len(d) for d in dm.datasets.values()) == 24


def test_balanced_sampler_draws_classes_equally(tiny_copy):
    victim = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    for f in sorted(victim.glob("*.jpeg"))[6:]:
        f.unlink()  # 6 images left in class 0, 16 in the others
    dm = _dm(tiny_copy, val_fraction=0.0, test_fraction=0.0, sampler="balanced", batch_size=6)
    counts = dm.class_counts("train")
    assert counts[0] == 6 and counts[1] == 16
    torch.manual_seed(0)
    loader = dm.train_dataloader()
    x, _ = next(iter(loader))
    assert x.shape[0] == 6
    targets = dm.datasets["train"].targets
    drawn = Counter()
    for epoch in range(50):  # the sampler alone: which images each epoch would load
        loader.sampler.set_epoch(epoch)
        drawn.update(targets[i] for _, i in loader.sampler)
    shares = [drawn[c] / sum(drawn.values()) for c in range(4)]
    assert all(abs(share - 0.25) < 0.04 for share in shares), shares
    with pytest.raises(ValueError, match="sampler"):
        MRIDataModule(tiny_copy, sampler="oversample")


def test_tiny_class_warns_instead_of_failing(tiny_copy):
    victim = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    for f in sorted(victim.glob("*.jpeg"))[2:]:
        f.unlink()  # 2 images left: cannot be in train, val and test
    with pytest.warns(UserWarning, match=re.escape(f"{victim.name} (2)")):
        dm = _dm(tiny_copy, group_near_duplicates=False)
    assert 0 in dm.datasets["train"].targets


def test_pin_memory_follows_the_device_unless_set(tiny_root):
    assert not _dm(tiny_root).train_dataloader().pin_memory  # no trainer: the CPU
    assert _dm(tiny_root, pin_memory=True).val_dataloader().pin_memory

"""The augmentations written once (conf/augment/*.yaml -> AugmentSpec): both forms from one spec,
the same pixels as the two lists the YAMLs held before."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchvision.transforms import v2

from braintumor.data.augmentation import AugmentSpec, BatchAugment
from tests.conftest import CONF_DIR

SIZE = 48


def _spec(name: str, **changes) -> AugmentSpec:
    cfg = OmegaConf.load(CONF_DIR / "augment" / f"{name}.yaml")
    return instantiate(cfg, **changes)


def _before(name: str) -> tuple[list, BatchAugment | None]:
    """What conf/augment/<name>.yaml listed twice before (transforms, batched)."""
    if name == "standard":
        return [
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomAffine(degrees=10, translate=[0.05, 0.05], scale=[0.95, 1.05]),
            v2.ColorJitter(brightness=0.2, contrast=0.2),
            v2.RandomResizedCrop(SIZE, scale=[0.85, 1.0], ratio=[0.9, 1.1], antialias=True),
        ], BatchAugment(SIZE, hflip=0.5, degrees=10, translate=0.05, scale=[0.95, 1.05],
                        brightness=0.2, contrast=0.2, crop_scale=[0.85, 1.0],
                        crop_ratio=[0.9, 1.1])  # fmt: skip
    if name == "strong":
        return [
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomAffine(degrees=20, translate=[0.1, 0.1], scale=[0.85, 1.15], shear=5),
            v2.ColorJitter(brightness=0.35, contrast=0.35),
            v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=[0.1, 1.5])], p=0.3),
            v2.RandomResizedCrop(SIZE, scale=[0.7, 1.0], ratio=[0.85, 1.15], antialias=True),
        ], None
    return [], BatchAugment(SIZE)


def _compose(transforms: list):
    return v2.Compose(transforms) if transforms else v2.Identity()


@pytest.mark.parametrize("name", ["standard", "strong", "none"])
def test_each_spec_gives_the_pixels_of_the_lists_it_replaces(name):
    spec = _spec(name)
    old_transforms, old_batched = _before(name)
    new_transforms, new_batched = spec.transforms(SIZE), spec.batch_augment(SIZE)
    assert [type(t) for t in new_transforms] == [type(t) for t in old_transforms]
    images = torch.randint(0, 256, (8, 1, SIZE, SIZE), dtype=torch.uint8)
    for seed in range(8):
        torch.manual_seed(seed)
        old = [_compose(old_transforms)(image) for image in images]
        torch.manual_seed(seed)
        new = [_compose(new_transforms)(image) for image in images]
        assert all(torch.equal(a, b) for a, b in zip(old, new, strict=True))
        if old_batched is None:
            assert new_batched is None  # no batched form: image by image in every mode
            continue
        torch.manual_seed(seed)
        old = old_batched(images)
        torch.manual_seed(seed)
        assert torch.equal(new_batched(images), old)


def test_one_parameter_changes_both_forms():
    spec = _spec("standard", degrees=30, hflip=0.0)
    affine = next(t for t in spec.transforms(SIZE) if isinstance(t, v2.RandomAffine))
    assert list(affine.degrees) == [-30.0, 30.0]
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in spec.transforms(SIZE))
    batched = spec.batch_augment(SIZE)
    assert batched.degrees == 30 and batched.hflip == 0.0 and batched.size == SIZE


def test_shear_and_blur_have_no_batched_form():
    with pytest.raises(ValueError, match=r"augment\.batched=false"):
        AugmentSpec(shear=5)
    assert _spec("standard", batched=False).batch_augment(SIZE) is None
    with pytest.raises(ValueError, match=r"augment\.crop_scale must be a \[low, high\] range"):
        AugmentSpec(crop_scale=[1.0, 0.5])
    assert AugmentSpec().transforms(SIZE) == []  # everything off: nothing per image


@pytest.mark.parametrize(
    ("name", "policy"),
    [("randaugment", v2.RandAugment), ("trivialaugment", v2.TrivialAugmentWide),
     ("augmix", v2.AugMix)],
)  # fmt: skip
@pytest.mark.parametrize("channels", [1, 3])
def test_each_policy_follows_the_standard_steps_and_changes_the_images(
    compose, name, policy, channels
):
    spec = instantiate(compose([f"augment={name}"]).augment)  # augment/standard, then the policy
    steps = spec.transforms(SIZE)
    assert isinstance(steps[-1], policy) and spec.batch_augment(SIZE) is None
    standard = [type(t) for t in _spec("standard").transforms(SIZE)]
    assert [type(t) for t in steps[:-1]] == standard
    images = torch.randint(0, 256, (16, channels, SIZE, SIZE), dtype=torch.uint8)
    torch.manual_seed(0)
    with_policy = [_compose(steps)(image) for image in images]
    torch.manual_seed(0)
    without = [_compose(steps[:-1])(image) for image in images]
    assert all(a.shape == (channels, SIZE, SIZE) and a.dtype == torch.uint8 for a in with_policy)
    assert sum(not torch.equal(a, b) for a, b in zip(with_policy, without, strict=True)) >= 8


def test_a_policy_has_no_batched_form_and_its_settings_are_checked():
    with pytest.raises(ValueError, match=r"augment\.policy have no batched form"):
        AugmentSpec(policy="randaugment")
    with pytest.raises(ValueError, match=r"augment\.policy must be one of"):
        AugmentSpec(policy="autoaugment", batched=False)
    with pytest.raises(ValueError, match=r"augment\.policy_magnitude must be"):
        AugmentSpec(policy="randaugment", policy_magnitude=31, batched=False)
    spec = AugmentSpec(policy="randaugment", policy_ops=3, policy_magnitude=5, batched=False)
    [randaugment] = spec.transforms(SIZE)
    assert randaugment.num_ops == 3 and randaugment.magnitude == 5


def test_a_policy_changes_training(make_cfg):
    from braintumor.pipeline.train import train

    quiet = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples", "test=false",
             "seed=5", "trainer.deterministic=true"]  # fmt: skip
    policy = train(make_cfg(*quiet, "augment=trivialaugment", run="policy"))
    standard = train(make_cfg(*quiet, "augment=standard", "augment.batched=false", run="standard"))
    again = train(make_cfg(*quiet, "augment=trivialaugment", run="again"))
    assert policy["train/loss"] != standard["train/loss"]  # the policy's images were trained on
    assert policy["train/loss"] == again["train/loss"]  # ... seeded like every augmentation

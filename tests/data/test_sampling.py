"""Training order and augmentations as functions of (seed, epoch, image)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from braintumor.data.loaders import LoaderSettings, build_loader
from braintumor.data.sampling import EpochSampler, EpochSeededDataset, derived_seed


class Noisy(Dataset):
    """Item i: i plus a random draw (stands in for a random augmentation)."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int) -> torch.Tensor:
        return index + torch.rand(3)


def test_derived_seed_depends_on_every_part():
    seeds = {derived_seed(7, e, i) for e in range(10) for i in range(10)}
    assert len(seeds) == 100 and derived_seed(7, 1, 2) == derived_seed(7, 1, 2)
    assert derived_seed(7, 1, 2) != derived_seed(7, 2, 1) != derived_seed(8, 1, 2)


def test_order_is_a_function_of_seed_and_epoch():
    a, b = EpochSampler(50, seed=3), EpochSampler(50, seed=3)
    torch.manual_seed(0)
    first = list(a)
    torch.manual_seed(1)  # the global random state plays no part
    assert list(b) == first and sorted(i for _, i in first) == list(range(50))
    assert all(epoch == 0 for epoch, _ in first)
    a.set_epoch(1)
    assert [i for _, i in a] != [i for _, i in first]
    assert [i for _, i in EpochSampler(50, seed=4)] != [i for _, i in first]


def test_skip_next_drops_the_start_of_one_pass_only():
    sampler = EpochSampler(12, seed=0)
    full = list(sampler)
    sampler.skip_next(5)
    assert list(sampler) == full[5:]
    assert list(sampler) == full


def test_balanced_weights_draw_with_replacement():
    sampler = EpochSampler(10, seed=0, weights=[1.0] * 5 + [0.0] * 5)
    drawn = [i for _, i in sampler]
    assert len(drawn) == 10 and all(i < 5 for i in drawn)


def test_augmentation_is_seeded_per_epoch_and_image_and_leaves_the_training_stream_alone():
    data = EpochSeededDataset(Noisy(), seed=11)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    x = data[(2, 5)]
    assert torch.equal(torch.get_rng_state(), before)  # main process: stream untouched
    assert torch.equal(data[(2, 5)], x)
    assert not torch.equal(data[(3, 5)], x) and not torch.equal(data[(2, 6)], x)
    assert len(data) == 20 and data[4].shape == (3,)  # plain indices pass through


def test_workers_give_the_same_items_as_the_main_process():
    data = EpochSeededDataset(Noisy(), seed=11)
    sampler = EpochSampler(len(data), seed=2)
    sampler.set_epoch(4)
    main = torch.cat(list(DataLoader(data, batch_size=5, sampler=sampler, num_workers=0)))
    workers = torch.cat(list(DataLoader(data, batch_size=5, sampler=sampler, num_workers=2)))
    assert torch.equal(main, workers)


def test_a_training_loader_with_workers_reads_its_sampler_at_the_first_batch():
    """A resumed Lightning run makes the training iterator, then sets the sampler's epoch and
    the batches to skip: the workers must serve that epoch, not the one at ``iter()``."""
    served = {}
    for workers in (0, 2):
        loader = build_loader(Noisy(), "train", LoaderSettings(4, workers, seed=2), shuffle=True)
        batches = iter(loader)
        loader.sampler.set_epoch(3)
        loader.sampler.skip_next(8)
        served[workers] = torch.cat(list(batches))
    expected = EpochSampler(20, seed=2)
    expected.set_epoch(3)
    assert served[2][:, 0].floor().long().tolist() == [i for _, i in expected][8:]
    assert torch.equal(served[2], served[0])  # and the same augmentations

"""Batched per-sample augmentation, stratified splits and the in-memory loader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.data import Normalization, TensorBatches, channel_stats, parse_augment, stratified_split
from cnnlab.data.augment import horizontal_flip, random_crop, random_erasing, random_resized_crop
from cnnlab.errors import CnnlabError


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_crop_cuts_a_window_of_the_zero_padded_image_per_sample():
    x = torch.rand(64, 3, 8, 8)
    out = random_crop(x, 4, generator())
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(64):
        matches = [(dy, dx) for dy in range(9) for dx in range(9) if torch.equal(padded[i, :, dy:dy + 8, dx:dx + 8], out[i])]
        assert matches, f"sample {i} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 20  # each sample draws its own offset


def test_flip_is_per_sample():
    x = torch.rand(200, 1, 4, 5)
    out = horizontal_flip(x, 0.5, generator())
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(200)]
    kept = [torch.equal(out[i], x[i]) for i in range(200)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 70 < sum(flipped) < 130


def test_random_resized_crop_and_erasing_shapes_and_variety():
    x = torch.rand(16, 3, 32, 32)
    out = random_resized_crop(x, 24, generator())
    assert out.shape == (16, 3, 24, 24)
    erased = random_erasing(torch.ones(100, 1, 16, 16), 1.0, generator())
    zero_fraction = (erased == 0).float().mean(dim=(1, 2, 3))
    assert (zero_fraction > 0).all() and zero_fraction.unique().numel() > 10
    assert torch.equal(random_erasing(x, 0.0, generator()), x)


def test_augmentation_is_reproducible_from_the_seed():
    augment = parse_augment("cifar")
    x = torch.rand(8, 3, 32, 32)
    assert torch.equal(augment(x, generator(3), 32), augment(x, generator(3), 32))
    assert not torch.equal(augment(x, generator(3), 32), augment(x, generator(4), 32))


def test_parse_augment_presets_and_lists():
    assert parse_augment("cifar").describe() == "random crop (pad 4), horizontal flip (p=0.5)"
    assert parse_augment("digits").flip == 0.0  # digits are never mirrored
    custom = parse_augment("crop=2,flip=0.3,erase,jitter=0.2")
    assert (custom.crop_padding, custom.flip, custom.erase, custom.jitter) == (2, 0.3, 0.25, 0.2)
    with pytest.raises(CnnlabError, match=r"unknown augmentation 'rotate=30'"):
        parse_augment("rotate=30")


def test_stratified_split_is_exact_disjoint_and_seeded():
    labels = torch.arange(10).repeat_interleave(500)  # sorted by label, as the embedded digits are
    kept, held = stratified_split(labels, 0.1, seed=0)
    assert torch.bincount(labels[held]).tolist() == [50] * 10
    assert torch.bincount(labels[kept]).tolist() == [450] * 10
    assert len(set(kept.tolist()) | set(held.tolist())) == 5000 and not set(kept.tolist()) & set(held.tolist())
    assert labels[held][:20].unique().numel() > 3  # interleaved, not sorted
    again, _ = stratified_split(labels, 0.1, seed=0)
    other, _ = stratified_split(labels, 0.1, seed=1)
    assert torch.equal(kept, again) and not torch.equal(kept, other)


def test_channel_stats_match_torch():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=7)
    x = images.double() / 255
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert std == pytest.approx(x.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-6)


def test_tensor_batches_cover_the_set_resize_normalize_and_repeat():
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(10)
    batches = TensorBatches(images, labels, 4, size=32, normalization=Normalization((0.5,), (0.25,)), shuffle=True, seed=1)
    seen = []
    for x, y in batches:
        assert x.shape[1:] == (1, 32, 32) and x.dtype == torch.float32
        seen += y.tolist()
    assert sorted(seen) == list(range(10)) and len(batches) == 3
    first = [y.tolist() for _, y in batches]
    batches.set_epoch(1)
    assert [y.tolist() for _, y in batches] != first
    batches.set_epoch(0)
    assert [y.tolist() for _, y in batches] == first
    plain = TensorBatches(images[:1], labels[:1], 1, size=28, normalization=Normalization((0.5,), (0.25,)))
    x, _ = next(iter(plain))
    torch.testing.assert_close(x, (images[:1].float() / 255 - 0.5) / 0.25)


def test_crop_and_flip_in_one_gather_is_a_crop_then_a_flip():
    from cnnlab.data.augment import crop_and_flip

    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = crop_and_flip(x, 2, 0.5, generator())
    assert out.dtype == torch.uint8
    padded = F.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(64):
        windows = [padded[i, :, dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        plain = any(torch.equal(w, out[i]) for w in windows)
        mirrored = any(torch.equal(w.flip(-1), out[i]) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 15 < flips < 50


def test_normalizing_uint8_directly_matches_the_float_route():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    normalization = Normalization((0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    torch.testing.assert_close(normalization.from_uint8(x), normalization(x.float() / 255))

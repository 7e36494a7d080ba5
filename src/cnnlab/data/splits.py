"""Stratified, seeded splits: every class keeps its share in every part."""

from __future__ import annotations

import torch

from cnnlab.data.sources import DataSource
from cnnlab.errors import CnnlabError

# The seed that picks a held-out test split: fixed, so that runs with different seeds are tested on
# the same images, as they would be on a published test split.
TEST_SPLIT_SEED = 1998


def stratified_split(labels: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (kept, held_out): `fraction` of each class held out, chosen with `seed`.

    Rounding happens per class (round half up), so with 500 digits per class and 0.1, each class
    gives exactly 50.
    """
    if not 0.0 < fraction < 1.0:
        raise CnnlabError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    kept, held = [], []
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = int(len(members) * fraction + 0.5)
        if count == 0 or count == len(members):
            raise CnnlabError(f"class {int(label)} has {len(members)} images: too few to hold out {fraction:.0%} of them")
        held.append(members[:count])
        kept.append(members[count:])
    kept_all, held_all = torch.cat(kept), torch.cat(held)
    # Interleave the classes (the stored order may be sorted by label).
    return kept_all[torch.randperm(len(kept_all), generator=generator)], held_all[torch.randperm(len(held_all), generator=generator)]


def hold_out_test(source: DataSource, fraction: float) -> DataSource:
    """`source` with `fraction` of each class of its training images held out as its test split
    (stratified, always the same images), for data that publishes none; unchanged for 0."""
    if not fraction:
        return source
    if source.test is not None:
        raise CnnlabError(f"{source.name} has a published test split of {len(source.test):,} images; "
                          "--test-fraction is for data without one: leave it at 0")
    kept, held = stratified_split(source.train.labels, fraction, seed=TEST_SPLIT_SEED)
    note = f"test split: {fraction:.0%} of each class held out ({len(held):,} images), never trained or validated on"
    return DataSource(source.name, source.train.subset(kept), source.train.subset(held), source.class_names,
                      [*source.notes, note])

"""A run's images: the training split cut into train and validation, and the test split."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.data import load_source, stratified_split
from cnnlab.data.splits import hold_out_test
from cnnlab.errors import CnnlabError
from cnnlab.train.config import TrainConfig


@dataclass(frozen=True)
class RunData:
    """The images a run trains, validates and tests on, and what they are."""

    train: object  # ImageSet or StreamingImageSet
    val: object
    test: object | None
    source: object  # the DataSource

    @property
    def channels(self) -> int:
        return self.train.shape[0]

    @property
    def stored_side(self) -> int:
        return self.train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.source.class_names)

    def describe(self) -> str:
        return (f"{len(self.train):,} train / {len(self.val):,} val"
                + (f" / {len(self.test):,} test" if self.test is not None else "") + " images")


def validation_indices(held: torch.Tensor, fraction: float, subset: int | None, val_size: int | None) -> torch.Tensor:
    """The validation images among the held-out ones (already shuffled, classes interleaved): all of
    them, or with --subset N a share `fraction` of N, so that validation costs what a tenth of the
    training does and not a tenth of the full set; at most `val_size` in any case."""
    count = len(held)
    if subset:
        count = min(count, max(1, round(subset * fraction)))
    if val_size:
        count = min(count, val_size)
    return held[:count]


def load_data(config: TrainConfig) -> RunData:
    """The run's splits: the published test split, or `test_fraction` of each class held out as
    one; `val_fraction` of each class held out of the training split (with the run's seed); the
    first `subset` of the rest trained on."""
    source = hold_out_test(load_source(config.data), config.test_fraction)
    if len(source.class_names) < 2:
        raise CnnlabError(f"{source.name} has {len(source.class_names)} class ({', '.join(source.class_names)}): a classifier "
                          "needs at least two; add the other classes' folders or select more classes")
    kept, held = stratified_split(source.train.labels, config.val_fraction, seed=config.seed)
    train = source.train.subset(kept)
    val = source.train.subset(validation_indices(held, config.val_fraction, config.subset, config.val_size))
    if config.subset:
        if config.subset < len(source.class_names):
            raise CnnlabError(f"--subset {config.subset} is smaller than the number of classes")
        train = train.subset(torch.arange(min(config.subset, len(train))))
    return RunData(train, val, source.test, source)

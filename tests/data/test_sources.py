"""The readers, on small files written in the published formats, and their error messages."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import DataError, load_source
from cnnlab.data.sources import FASHION_MNIST_DIR, FASHION_MNIST_NAMES, read_idx
from tests.data.formats import exploit_pickle, idx_bytes, tar_gz, write_cifar10, write_cifar100, write_idx_set


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist", "kmnist"])
def test_idx_sets_read_back_exactly(tmp_path, gz, kind):
    arrays = write_idx_set(tmp_path, gz=gz)
    source = load_source(f"{kind}:{tmp_path}")
    assert source.train.images.shape == (30, 1, 28, 28) and source.test.images.shape == (20, 1, 28, 28)
    assert source.train.images.dtype == torch.uint8
    assert np.array_equal(source.train.images[:, 0].numpy(), arrays["train"][0])
    assert np.array_equal(source.test.labels.numpy(), arrays["test"][1])
    assert len(source.class_names) == 10
    if kind == "fashion-mnist":
        assert source.class_names[0] == "T-shirt/top" and source.class_names[9] == "Ankle boot"


def test_idx_wrong_magic_number(tmp_path):
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x56\x78" + path.read_bytes()[4:])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is not an IDX file: its magic number is 0x12345678"):
        load_source(f"mnist:{tmp_path}")


def test_idx_truncated_file(tmp_path):
    write_idx_set(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz is truncated: its header announces \(20, 28, 28\)"):
        load_source(f"mnist:{tmp_path}")
    path.write_bytes(path.read_bytes()[:50])  # a cut gzip stream
    with pytest.raises(DataError, match=r"cannot read .*t10k-images-idx3-ubyte.gz"):
        load_source(f"mnist:{tmp_path}")


def test_idx_counts_differ(tmp_path):
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"has 30 images but .*train-labels-idx1-ubyte has 29 labels"):
        load_source(f"mnist:{tmp_path}")


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(DataError, match=r"does not exist"):
        load_source(f"mnist:{tmp_path / 'nowhere'}")
    with pytest.raises(DataError, match=r"has no train-images-idx3-ubyte"):
        load_source(f"mnist:{tmp_path}")
    with pytest.raises(DataError, match=r"unknown data set 'imagenet'"):
        load_source("imagenet")
    with pytest.raises(DataError, match=r"names no folder"):
        load_source("cifar10:")


def test_read_idx_handles_raw_arrays(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(idx_bytes(array))
    assert np.array_equal(read_idx(tmp_path / "x"), array)


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_folder_and_tar_gz(tmp_path, archive):
    batches = write_cifar10(tmp_path)
    location = tar_gz(tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz") if archive else tmp_path
    source = load_source(f"cifar10:{location}")
    assert source.train.images.shape == (60, 3, 32, 32) and source.test.images.shape == (12, 3, 32, 32)
    # rows are 1024 red, then 1024 green, then 1024 blue values, row-major
    first = batches["data_batch_1"][b"data"][0]
    assert np.array_equal(source.train.images[0].numpy(), first.reshape(3, 32, 32))
    assert source.train.labels.tolist()[:12] == batches["data_batch_1"][b"labels"]
    assert source.class_names == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_cifar100_fine_and_coarse(tmp_path):
    batches = write_cifar100(tmp_path)
    fine = load_source(f"cifar100:{tmp_path}")
    coarse = load_source(f"cifar100-coarse:{tmp_path}")
    assert len(fine.class_names) == 100 and fine.class_names[3] == "fine3"
    assert len(coarse.class_names) == 20 and coarse.class_names[3] == "coarse3"
    assert fine.train.labels.tolist() == batches["train"][b"fine_labels"]
    assert coarse.train.labels.tolist() == batches["train"][b"coarse_labels"]


def test_cifar_pickle_carrying_code_is_refused(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(exploit_pickle())
    with pytest.raises(DataError, match=r"data_batch_3 is not a CIFAR python batch \(refusing to load posix.system"):
        load_source(f"cifar10:{tmp_path}")
    assert not Path("/tmp/cnnlab-pwned").exists()


def test_cifar_missing_batch(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"has no test_batch"):
        load_source(f"cifar10:{tmp_path}")


def write_png(path: Path, colour: int, size: int = 20) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size + 4, 3), colour, dtype=np.uint8)).save(path)


def test_folder_set_with_test_split(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        for colour, name in ((10, "cats"), (200, "dogs")):
            for i in range(count):
                write_png(tmp_path / split / name / f"{i}.png", colour)
    source = load_source(f"folder:{tmp_path}", image_size=16)
    assert source.class_names == ("cats", "dogs")
    assert source.train.images.shape == (6, 3, 16, 16) and source.test.images.shape == (4, 3, 16, 16)
    assert source.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert int(source.train.images[0].float().mean()) == 10 and int(source.train.images[-1].float().mean()) == 200


def test_folder_errors(tmp_path):
    write_png(tmp_path / "cats" / "a.png", 10)
    (tmp_path / "dogs").mkdir()
    with pytest.raises(DataError, match=r"class folder .*dogs has no JPEG or PNG images"):
        load_source(f"folder:{tmp_path}")
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"cannot decode .*broken.png"):
        load_source(f"folder:{tmp_path}")
    with pytest.raises(DataError, match=r"has no class subfolders"):
        load_source(f"folder:{tmp_path / 'cats'}")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed (make data)")
def test_real_fashion_mnist():
    source = load_source("fashion-mnist")
    assert source.train.images.shape == (60_000, 1, 28, 28) and source.test.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(source.train.labels).tolist() == [6_000] * 10
    assert torch.bincount(source.test.labels).tolist() == [1_000] * 10
    assert source.class_names == FASHION_MNIST_NAMES


def test_large_folder_streams_through_dataloader_workers(tmp_path, monkeypatch):
    from cnnlab.data import FolderBatches, Normalization, StreamingImageSet, make_batches, parse_augment
    from cnnlab.data import sources

    for colour, name in ((10, "cats"), (200, "dogs")):
        for i in range(5):
            write_png(tmp_path / name / f"{i}.png", colour)
    monkeypatch.setattr(sources, "IN_MEMORY_LIMIT", 0)  # everything counts as large
    source = load_source(f"folder:{tmp_path}", image_size=16)
    assert isinstance(source.train, StreamingImageSet) and source.notes
    batches = make_batches(source.train, 4, size=16, normalization=Normalization((0.5,) * 3, (0.5,) * 3),
                           augment=parse_augment("cifar"), shuffle=True, seed=0, workers=2)
    assert isinstance(batches, FolderBatches) and len(batches) == 3
    labels = []
    for x, y in batches:
        assert x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32
        labels += y.tolist()
    assert sorted(labels) == [0] * 5 + [1] * 5


def test_class_selection_keeps_and_relabels_classes():
    source = load_source("mnist-embedded[7,2-3]")
    assert source.name == "mnist-embedded[7,2-3]" and source.class_names == ("7", "2", "3")
    assert source.train.labels.bincount().tolist() == [500, 500, 500]
    everything = load_source("mnist-embedded")
    sevens = everything.train.images[everything.train.labels == 7]
    assert torch.equal(source.train.images[source.train.labels == 0], sevens)


@pytest.mark.parametrize("spec, message", [
    ("mnist-embedded[4-1]", "the range '4-1' runs backwards; write [1-4]"),
    ("mnist-embedded[0-10]", "class 10 does not exist; the set has classes 0-9"),
    ("mnist-embedded[a]", "cannot read the class selection 'a'"),
    ("mnist-embedded[3]", "needs at least two classes"),
    ("mnist-embedded[1,1]", "a class is named twice"),
])
def test_bad_class_selections(spec, message):
    with pytest.raises(DataError, match=re.escape(message)):
        load_source(spec)

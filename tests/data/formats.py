"""Writers of small files in the published formats, for the readers' tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """LeCun's IDX: two zero bytes, type 0x08 (unsigned byte), rank, big-endian int32 sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", size) for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory: Path, train: int = 30, test: int = 20, classes: int = 10, gz: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, count, stem in (("train", train, "train"), ("test", test, "t10k")):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        arrays[split] = (images, labels)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            name = f"{stem}-{kind}"
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
    return arrays


def cifar_batch(count: int, classes: int, rng, hundred: bool = False) -> dict:
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"testing batch 1 of 1", b"data": data, b"filenames": [b"x.png"] * count}
    if hundred:
        batch[b"fine_labels"] = [int(i % classes) for i in range(count)]
        batch[b"coarse_labels"] = [int(i % 20) for i in range(count)]
    else:
        batch[b"labels"] = [int(i % classes) for i in range(count)]
    return batch


def write_cifar10(directory: Path, per_batch: int = 12, seed: int = 0) -> dict[str, dict]:
    """The python version's layout: cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    rng = np.random.default_rng(seed)
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": cifar_batch(per_batch, 10, rng) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(per_batch, 10, rng)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_cases_per_batch": per_batch}, protocol=2))
    return batches


def write_cifar100(directory: Path, count: int = 200, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    folder = directory / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {"train": cifar_batch(count, 100, rng, hundred=True), "test": cifar_batch(count // 2, 100, rng, hundred=True)}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


class Exploit:
    """A pickle that would run a command when loaded."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/cnnlab-pwned",))


def exploit_pickle() -> bytes:
    buffer = io.BytesIO()
    pickle.dump({b"data": Exploit()}, buffer, protocol=2)
    return buffer.getvalue()

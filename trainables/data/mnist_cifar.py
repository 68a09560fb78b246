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
from typing import Any

import numpy as np

from .decode import (
    Pool,
    Source,
    check_classes_nonempty,
    decode_images,
    list_images,
    require_dir,
    resize_array,
    select_labels,
    warn_skipped,
)
from .errors import DataError, preview
from .idx import idx_present, idx_source, torchvision_download, write_idx_dataset
from .registry import register_dataset
from .spec import DataSpec, select_classes
from .synthetic import write_image_folder

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_BATCHES = "cifar-10-batches-py"
CIFAR_NATIVE = 32


# MNIST ---------------------------------------------------------------------------------------


def mnist_source(spec: DataSpec) -> Source:
    """MNIST reader: the idx files through torchvision (one vectorised read per split)."""
    return idx_source(spec, "MNIST", [str(d) for d in range(10)], MNIST_URL)


def _mnist_download(folder: Path, timeout: float) -> None:
    del timeout  # bounded by ensure_downloaded's socket timeout
    torchvision_download(folder, "MNIST")


def write_mnist(root: str | Path, seed: int = 0, **kwargs: int) -> Path:
    """A small synthetic MNIST in the real idx layout (see `write_idx_dataset` for kwargs)."""
    return write_idx_dataset(root, "MNIST", seed=seed, **kwargs)


register_dataset(
    "mnist",
    folder=".",  # torchvision's root layout: the data root holds MNIST/raw/
    markers=("MNIST",),
    task="classification",
    official_test=True,
    reader=mnist_source,
    synthetic=write_mnist,
    download=_mnist_download,
    manual="put the four uncompressed idx files in {path}/MNIST/raw (from " + MNIST_URL + ")",
    url=MNIST_URL,
    present=lambda folder: idx_present(folder, "MNIST"),
    native_size=28,
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
        keep, labels = select_labels(np.concatenate([p[1] for p in parts]), all_ids, chosen)
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
        out: list[tuple[Any, Any]] = []  # (images, labels); (None, None): no test split
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


def _cifar_present(folder: Path) -> bool:
    return cifar_pickle_root(folder) is not None or (folder / "train").is_dir()


def _cifar_download(folder: Path, timeout: float) -> None:
    from torchvision.datasets import CIFAR10

    del timeout  # bounded by ensure_downloaded's socket timeout
    folder.mkdir(parents=True, exist_ok=True)
    CIFAR10(str(folder), train=True, download=True)  # the archive holds the test batch too


register_dataset(
    "cifar10",
    folder="cifar10-images",
    markers=(CIFAR_BATCHES, "train"),
    task="classification",
    official_test=True,
    reader=cifar10_source,
    synthetic=write_image_folder,
    download=_cifar_download,
    manual=(
        f"extract {CIFAR_URL} into {{path}} (giving {{path}}/{CIFAR_BATCHES}/), or put an image "
        "folder there: train/<class>/*.jpg and test/<class>/*.jpg"
    ),
    url=CIFAR_URL,
    present=_cifar_present,
    native_size=CIFAR_NATIVE,
)

"""Data sets in the idx format, in torchvision's root layout (MNIST, FashionMNIST).

```
<root>/<Folder>/raw/train-images-idx3-ubyte   # uint8 (N, 28, 28)
<root>/<Folder>/raw/train-labels-idx1-ubyte   # uint8 (N,)
<root>/<Folder>/raw/t10k-images-idx3-ubyte
<root>/<Folder>/raw/t10k-labels-idx1-ubyte
```

``<Folder>`` is the torchvision class name ("MNIST", "FashionMNIST"); this is what
``torchvision.datasets.<Folder>(root, download=True)`` writes, and torchvision reads it back (one
vectorised read per split). Class ids are the label digits "0".."9"; class names may differ
(FashionMNIST's "Coat") and are accepted in a class list too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .decode import Pool, Source, resize_array, select_labels
from .errors import DataError, preview
from .spec import DataSpec, select_classes
from .synthetic import class_image

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# idx magic numbers: two zero bytes, the type code (0x08 = uint8) and the number of dimensions.
_UBYTE = 0x08


def raw_dir(root: Path, folder: str) -> Path:
    """``<root>/<folder>/raw``; a root that is itself the `folder` folder is accepted too."""
    root = Path(root)
    if not (root / folder / "raw").is_dir() and root.name == folder and (root / "raw").is_dir():
        root = root.parent
    return root / folder / "raw"


def idx_present(root: Path, folder: str) -> bool:
    """Whether the four uncompressed idx files are in torchvision's layout under `root`."""
    raw = raw_dir(root, folder)
    return all((raw / f).is_file() for f in IDX_FILES)


def idx_source(spec: DataSpec, folder: str, class_names: Sequence[str], url: str) -> Source:
    """The reader of an idx data set whose torchvision class is named `folder`.

    Args:
        spec: what to load; ``spec.path`` is the root that holds `folder`/raw.
        folder: torchvision's class name, also the folder name ("MNIST", "FashionMNIST").
        class_names: the names of labels 0..9 (MNIST: the digits themselves).
        url: where the files come from, for the missing-files message.
    """
    raw = raw_dir(spec.path, folder)
    if not idx_present(spec.path, folder):
        missing = [f for f in IDX_FILES if not (raw / f).is_file()]
        raise DataError(
            f"{folder} not found: {raw} lacks {preview(missing)}. Expected torchvision's layout "
            f"<root>/{folder}/raw/ with the four uncompressed idx files; get them with "
            f"trainables.data.ensure_downloaded(spec) or from {url}"
        )
    check_idx_files(raw, url)
    all_ids = [str(d) for d in range(len(class_names))]
    name_of = dict(zip(all_ids, class_names, strict=True))
    aliases = {name: cid for cid, name in name_of.items() if name != cid}
    where = f"{folder} ({', '.join(f'{i}={n}' for i, n in name_of.items())})"
    chosen = select_classes(all_ids, spec.classes, spec.class_seed, aliases=aliases, where=where)
    names = [name_of[c] for c in chosen]

    def load(train: bool) -> tuple[np.ndarray, np.ndarray]:
        import torchvision.datasets

        ds = getattr(torchvision.datasets, folder)(str(raw.parent.parent), train=train)
        keep, labels = select_labels(ds.targets.numpy().astype(np.int64), all_ids, chosen)
        images = ds.data.numpy()[keep][..., None]  # (N, 28, 28, 1)
        return resize_array(images, spec.image_size), labels

    def decode() -> Pool:
        train_x, train_y = load(True)
        test_x, test_y = (None, None) if spec.uses_holdout_test else load(False)
        return Pool("classification", chosen, names, train_x, train_y, test_x, test_y)

    return Source(
        spec.dataset,
        raw,
        "classification",
        chosen,
        names,
        [raw / f for f in IDX_FILES],
        decode,
        {"image_size": spec.image_size, "official_test": not spec.uses_holdout_test},
    )


def check_idx_files(raw: Path, url: str) -> None:
    """Each idx file's header and length, and that labels match images, before torchvision
    reads them (its answer to a damaged file is a bare AssertionError or a reshape error)."""
    counts = {}
    for name in IDX_FILES:
        ndim = 1 if "labels" in name else 3
        counts[name] = _idx_count(raw / name, ndim, url)
    for split in ("train", "t10k"):
        images, labels = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if images != labels:
            raise DataError(
                f"{raw}: {split}-images-idx3-ubyte holds {images} images but "
                f"{split}-labels-idx1-ubyte {labels} labels; one of the two is from another "
                f"download. {_refetch(raw, url)}"
            )


def _idx_count(path: Path, ndim: int, url: str) -> int:
    """The number of items an uint8 idx file of `ndim` dimensions declares and holds."""
    try:
        with path.open("rb") as f:
            header = f.read(4 + 4 * ndim)
        size = path.stat().st_size
    except OSError as err:
        where = _refetch(path.parent, url)
        raise DataError(f"cannot read {path}: {err.strerror or err}. {where}") from None
    magic = bytes([0, 0, _UBYTE, ndim])
    if header[:4] != magic:
        raise DataError(
            f"{path} is not an uncompressed idx file of {ndim}-d uint8 data: its magic number is "
            f"{header[:4].hex() or 'missing (empty file)'}, expected {magic.hex()} (a .gz left "
            f"compressed, or another file under this name). {_refetch(path.parent, url)}"
        )
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"{path} ends inside its header. {_refetch(path.parent, url)}")
    dims = np.frombuffer(header[4:], ">i4")
    expected = 4 + 4 * ndim + int(np.prod(dims.astype(np.int64)))
    if size != expected:
        raise DataError(
            f"{path} is {'truncated' if size < expected else 'too long'}: {size:,} bytes, its "
            f"header ({' x '.join(map(str, dims))}) says {expected:,}. {_refetch(path.parent, url)}"
        )
    return int(dims[0])


def _refetch(raw: Path, url: str) -> str:
    return f"Replace the file: delete {raw} and download the idx files again (from {url})"


def torchvision_download(root: Path, folder: str) -> None:
    """Fetch both splits with torchvision's downloader into `root`/`folder`/raw."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, folder)
    torch_root = raw_dir(root, folder).parent.parent
    for train in (True, False):
        cls(str(torch_root), train=train, download=True)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an uncompressed idx file (big-endian int32 dimensions)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    path.write_bytes(header + array.tobytes())


def write_idx_dataset(
    root: str | Path,
    folder: str,
    n_classes: int = 10,
    train_per_class: int = 20,
    test_per_class: int = 5,
    size: int = 28,
    seed: int = 0,
) -> Path:
    """Write a small idx data set under `root`/`folder`/raw; class k has its own stripe pattern.

    Returns:
        `root` as a Path (what `DataSpec.path` is for MNIST-style data sets).
    """
    root = Path(root)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.tile(np.arange(n_classes, dtype=np.uint8), per_class)
        rng.shuffle(labels)
        images = np.stack([class_image(int(k), n_classes, size, rng).mean(-1) for k in labels])
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images.round().astype(np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root

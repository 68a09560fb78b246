"""Tiny ImageNet-200 in its official layout.

```
tiny-imagenet-200/
  wnids.txt                       # the class ids (wnids), one per line, in label order
  words.txt                       # "wnid<TAB>synonym, synonym, ..." for all of ImageNet
  train/<wnid>/images/*.JPEG      # 500 per class, 64x64
  train/<wnid>/<wnid>_boxes.txt
  val/images/*.JPEG               # 50 per class
  val/val_annotations.txt         # "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1"
```

`TinyImageNetDataset` is the per-item PIL dataset of the course (and the baseline of
benchmarks/loader.py); `tiny_imagenet_source` lists the same samples for the cached array path.
Class names are the first synonym in words.txt ("n01443537" -> "goldfish").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .decode import (
    Pool,
    Source,
    check_classes_nonempty,
    decode_images,
    list_images,
    require_dir,
    warn_skipped,
)
from .download import fetch_zip_folder
from .errors import DataError, preview
from .registry import register_dataset
from .spec import ClassSelection, DataSpec, select_classes
from .synthetic import write_tiny_imagenet

NATIVE_SIZE = 64
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
LAYOUT_HINT = (
    "expected the official Tiny ImageNet layout: wnids.txt, words.txt, train/<wnid>/images/*.JPEG,"
    f" val/images/*.JPEG and val/val_annotations.txt (download: {URL})"
)

Sample = tuple[Path, int]


def read_wnids(root: Path) -> list[str]:
    """The class ids of wnids.txt, in file order (= label order for "all" and "first N")."""
    require_dir(Path(root), "Tiny ImageNet folder", LAYOUT_HINT)
    path = Path(root) / "wnids.txt"
    if not path.is_file():
        fix = LAYOUT_HINT
        if (Path(root) / "train").is_dir():
            fix = (
                f"the folder has train/ but not the class list wnids.txt, which fixes the label "
                f"order (the official Tiny ImageNet layout). Copy wnids.txt from the official "
                f"zip ({URL}), or, for a folder of your own, write one wnid per line: "
                f"ls {Path(root) / 'train'} > {path}"
            )
        raise DataError(f"{path} is missing; {fix}")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise DataError(f"{path} lists no class; it should hold one wnid per line")
    return wnids


def read_words(root: Path) -> dict[str, str]:
    """wnid -> first synonym from words.txt ("goldfish"); empty if words.txt is absent."""
    path = Path(root) / "words.txt"
    if not path.is_file():
        return {}
    names = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        wnid, _, words = line.partition("\t")
        if words:
            names[wnid.strip()] = words.split(",")[0].strip()
    return names


def resolve_classes(
    root: Path, classes: ClassSelection = None, class_seed: int | None = None
) -> tuple[list[str], list[str]]:
    """(wnids, human names) of a selection; names from words.txt, the wnid where it has none.

    A list may mix wnids and first synonyms ("goldfish"); an unknown entry raises a DataError
    listing valid wnids.
    """
    root = Path(root)
    wnids = read_wnids(root)
    words = read_words(root)
    # Only unambiguous names work as aliases (ImageNet has repeated synonyms, e.g. "crane").
    by_name: dict[str, list[str]] = {}
    for w in wnids:
        by_name.setdefault(words.get(w, w), []).append(w)
    aliases = {name: ws[0] for name, ws in by_name.items() if len(ws) == 1}
    chosen = select_classes(
        wnids, classes, class_seed, aliases=aliases, where=str(root / "wnids.txt")
    )
    return chosen, [words.get(w, w) for w in chosen]


def train_samples(root: Path, wnids: list[str]) -> list[Sample]:
    """(path, label) of train/<wnid>/images/*.JPEG, label = index in `wnids`."""
    root = Path(root)
    require_dir(root / "train", "Tiny ImageNet train folder", LAYOUT_HINT)
    samples: list[Sample] = []
    for label, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        require_dir(folder, f"class folder of {wnid}", LAYOUT_HINT)
        files = list_images(folder)
        if not files:
            raise DataError(
                f"class folder {folder} holds no image; add its JPEGs or leave {wnid} out of "
                "classes"
            )
        samples.extend((f, label) for f in files)
    return samples


def val_samples(root: Path, wnids: list[str]) -> list[Sample]:
    """(path, label) of the official val folder for the selected classes (the "official" test)."""
    root = Path(root)
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise DataError(
            f"{ann} is missing, so the official val folder cannot be the test split; "
            f"{LAYOUT_HINT}, or use test_split='holdout'"
        )
    label_of = {w: i for i, w in enumerate(wnids)}
    samples: list[Sample] = []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip() in label_of:
            samples.append((root / "val" / "images" / parts[0].strip(), label_of[parts[1].strip()]))
    missing = sorted({wnids[label] for label in range(len(wnids))} - {wnids[s[1]] for s in samples})
    if missing:
        raise DataError(
            f"{ann} has no image of class {preview(missing)}; use test_split='holdout' "
            "or a complete val folder"
        )
    return sorted(samples)


class TinyImageNetDataset(torch.utils.data.Dataset):
    """Per-item Tiny ImageNet: each `__getitem__` opens one JPEG with PIL (the course's dataset).

    Args:
        root: the tiny-imagenet-200 folder.
        split: "train" (train/<wnid>/images) or "val" (the official val folder).
        classes: None (all), N (first N, or drawn with `class_seed`), or a list of wnids / names.
        class_seed: seed for drawing N classes.
        transform: applied to the RGB PIL image (e.g. a torchvision transform).
        target_transform: applied to the int label.
        image_size: resize to this square side (bilinear) before `transform`; None keeps 64.

    Items are (transform(image), label); without a transform the image is a PIL RGB image.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        classes: Any = None,
        class_seed: int | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        image_size: int | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise DataError(f"split={split!r} is not valid; use 'train' or 'val'")
        # DataSpec normalizes the selection ({"n", "seed"}, lists) and validates image_size.
        spec = DataSpec(
            "tiny_imagenet",
            Path(root),
            classes=classes,
            class_seed=class_seed,
            image_size=image_size,
        )
        self.root = spec.path
        self.split = split
        self.wnids, self.class_names = resolve_classes(self.root, spec.classes, spec.class_seed)
        self.samples = (train_samples if split == "train" else val_samples)(self.root, self.wnids)
        self.targets = [label for _, label in self.samples]
        self.transform = transform
        self.target_transform = target_transform
        self.image_size = spec.image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")  # 138 of the shared train JPEGs are grayscale
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image {path}: {exc}; delete or replace the file") from exc
        if self.image_size is not None and image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        if self.transform is not None:
            image = self.transform(image)
        target = self.target_transform(label) if self.target_transform is not None else label
        return image, target


def tiny_imagenet_source(spec: DataSpec) -> Source:
    """The cached-array reader: resolved classes, files to read and their decoder."""
    root = spec.path
    wnids, names = resolve_classes(root, spec.classes, spec.class_seed)
    train = train_samples(root, wnids)
    test = [] if spec.uses_holdout_test else val_samples(root, wnids)
    side = spec.image_size or NATIVE_SIZE

    def decode() -> Pool:
        skipped: list[str] = []
        arrays: list[tuple[Any, Any]] = []  # (images, labels); (None, None): no test split
        for samples, where in ((train, root / "train"), (test, root / "val" / "images")):
            if not samples:
                arrays.append((None, None))
                continue
            paths = [p for p, _ in samples]
            labels = np.array([label for _, label in samples], dtype=np.int64)
            images, ok, failed = decode_images(paths, (side, side))
            skipped += [str(p.relative_to(root)) for p in failed]
            check_classes_nonempty(labels[ok], wnids, str(where))
            arrays.append((images[ok], labels[ok]))
        warn_skipped(skipped, str(root))
        (train_x, train_y), (test_x, test_y) = arrays
        return Pool("classification", wnids, names, train_x, train_y, test_x, test_y, skipped)

    meta = [root / "wnids.txt", root / "words.txt", root / "val" / "val_annotations.txt"]
    files = [p for p in meta if p.is_file()] + [p for p, _ in train + test if p.exists()]
    return Source(
        "tiny_imagenet",
        root,
        "classification",
        wnids,
        names,
        files,
        decode,
        {"image_size": side, "official_test": not spec.uses_holdout_test},
    )


def _present(folder: Path) -> bool:
    """A folder with the class list or the training images is there (nothing to download):
    a missing part is then the reader's to name, not a download's to paper over."""
    return (folder / "wnids.txt").is_file() or (folder / "train").is_dir()


def _download(folder: Path, timeout: float) -> None:
    # The zip holds one top folder, tiny-imagenet-200/; it is moved to whatever `folder` is called.
    fetch_zip_folder(URL, "tiny-imagenet-200", folder, timeout)


register_dataset(
    "tiny_imagenet",
    folder="tiny-imagenet-200",
    markers=("wnids.txt",),
    task="classification",
    official_test=True,  # the val folder, labelled in val_annotations.txt
    reader=tiny_imagenet_source,
    synthetic=write_tiny_imagenet,
    download=_download,
    manual=f"unzip {URL} and put the contents of its tiny-imagenet-200/ in {{path}}",
    url=URL,
    present=_present,
    native_size=NATIVE_SIZE,
)

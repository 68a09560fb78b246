"""What to load: `DataSpec`, the data root and the default folder name of each data set.

Class selection has one representation after construction:

* ``classes=None``: every class of the data set, in its own order (wnids.txt, 0-9, CIFAR's 10).
* ``classes=N`` (int) and ``class_seed=None``: the first N classes in that order.
* ``classes=N`` and ``class_seed=S``: N classes drawn without replacement with seed S (kept in
  the data set's order, so the same draw always gives the same labels).
* ``classes=("n01443537", "goldfish", ...)``: these classes, by id (wnid, CIFAR folder name, MNIST
  digit) or, for Tiny ImageNet, by the first synonym in words.txt; label i is the i-th entry.

``classes={"n": N, "seed": S}`` (handy in a study file) and lists are accepted and normalized to
``classes=N, class_seed=S`` and a tuple.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, preview
from .registry import get_dataset

TEST_SPLITS = ("official", "holdout")

# The data keys of the flat trial config (docs/interfaces.md) and their defaults. The data layer
# owns them; DataSpec's field defaults and `DataSpec.from_config` read them from here.
DATA_DEFAULTS: dict[str, Any] = {
    "dataset": "tiny_imagenet",
    "data_dir": None,  # folder under the data root (or absolute); None = the data set's default
    "classes": None,  # None = all, int = first N, list = ids, {"n": N, "seed": S} = N drawn
    "class_seed": None,  # with an int `classes`: draw the N classes with this seed
    "image_size": None,  # None = native size
    "val_fraction": 0.1,
    "test_fraction": 0.1,
    "split_seed": 0,
    "test_split": "official",  # "official" test set / val folder, or "holdout" from train
}
CONFIG_KEYS = tuple(DATA_DEFAULTS)

ClassSelection = None | int | tuple[str, ...]


def default_data_root() -> Path:
    """The folder that holds the data set folders: ``$ARCHSWEEP_DATA``, else ``./data``."""
    env = os.environ.get("ARCHSWEEP_DATA")
    return Path(env).expanduser() if env else Path("data")


def dataset_dir(dataset: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The default folder of `dataset` under the data root `root` (default: `default_data_root()`).

    If `root` lacks the data set's default folder but itself has one of its layout markers
    (wnids.txt, MNIST/, cifar-10-batches-py/, images/render/), it is used as is, so both
    ``data/`` and ``data/tiny-imagenet-200`` work as the root.
    """
    entry = get_dataset(dataset)
    root = Path(root).expanduser() if root is not None else default_data_root()
    candidate = root / entry.folder
    if not candidate.exists() and any((root / m).exists() for m in entry.markers):
        return root
    return candidate


def resolve_data_dir(
    dataset: str,
    data_dir: str | os.PathLike[str] | None,
    data_root: str | os.PathLike[str] | None = None,
) -> Path:
    """The folder a config's ``data_dir`` names: the one meaning of ``data_dir``.

    ``data_dir`` is the data set's folder, relative to the data root (``data_dir=
    "MARS_ROCKS_BINARY"`` reads ``<data root>/MARS_ROCKS_BINARY``); an absolute path (or ``~``) is
    used as is. None or "" means the data set's default folder, ``dataset_dir(dataset, data_root)``.
    `data_root` defaults to `default_data_root()` (``$ARCHSWEEP_DATA`` or ``./data``).
    """
    get_dataset(dataset)  # unknown names fail here, listing the valid ones
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    if data_dir is None or str(data_dir) == "":
        return dataset_dir(dataset, root)
    if not isinstance(data_dir, str | os.PathLike):
        raise DataError(
            f"data_dir={data_dir!r} is not valid; use a folder name under the data root "
            "(e.g. 'MARS_ROCKS_BINARY'), an absolute path, or None for the default folder"
        )
    return root / Path(data_dir).expanduser()  # an absolute data_dir replaces the root


@dataclass(frozen=True)
class DataSpec:
    """Which data set, classes, size and split a trial uses (see the module docstring).

    Args:
        dataset: a registered data set name (see `list_datasets()`).
        path: the data set folder (e.g. ``<root>/tiny-imagenet-200``); None means
            ``dataset_dir(dataset)`` under the default data root.
        classes: class selection, see the module docstring.
        class_seed: with an int `classes`, draw the N classes with this seed.
        image_size: None keeps the native size; an int resizes every image to a square of that
            side at decode time (PIL bilinear for images, nearest for masks; e.g. 128 turns Tiny
            ImageNet's 64x64 into 128x128 without cropping).
        val_fraction: fraction of the training pool held out (stratified) for validation.
        test_fraction: fraction of the training pool held out for test when
            ``test_split="holdout"``; ignored with "official".
        split_seed: seed of the stratified splits.
        test_split: "official" uses the data set's own test set (Tiny ImageNet's val folder,
            MNIST's and CIFAR-10's test sets); "holdout" carves a stratified test split out of
            train. A data set registered without an official test set (lunar) always uses a
            holdout.
    """

    dataset: str
    # None means the default folder; __post_init__ always resolves it, so readers see a Path.
    path: Path = None  # type: ignore[assignment]
    classes: Any = DATA_DEFAULTS["classes"]
    class_seed: int | None = DATA_DEFAULTS["class_seed"]
    image_size: int | None = DATA_DEFAULTS["image_size"]
    val_fraction: float = DATA_DEFAULTS["val_fraction"]
    test_fraction: float = DATA_DEFAULTS["test_fraction"]
    split_seed: int = DATA_DEFAULTS["split_seed"]
    test_split: str = DATA_DEFAULTS["test_split"]

    def __post_init__(self) -> None:
        get_dataset(self.dataset)  # unknown names fail here, listing the valid ones
        # frozen: normalize through object.__setattr__ so the instance stays hashable and equal
        # specs compare equal whatever form the user wrote them in.
        path = dataset_dir(self.dataset) if self.path is None else Path(self.path).expanduser()
        object.__setattr__(self, "path", path)
        classes, seed = _normalize_classes(self.classes, self.class_seed)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "class_seed", seed)
        if self.image_size is not None and (
            isinstance(self.image_size, bool)
            or not isinstance(self.image_size, int)
            or self.image_size < 8
        ):
            raise DataError(
                f"image_size={self.image_size!r} is not valid; use None (native size) "
                "or an int >= 8 (e.g. 128)"
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
                raise DataError(f"{name}={value!r} is not valid; use a number in [0, 1)")
        if self.test_split not in TEST_SPLITS:
            raise DataError(
                f"test_split={self.test_split!r} is not valid; use one of {', '.join(TEST_SPLITS)}"
            )
        held_out = self.val_fraction + (self.test_fraction if self.uses_holdout_test else 0.0)
        if held_out >= 1.0:
            raise DataError(
                f"val_fraction + test_fraction = {held_out:g} leaves no training data; "
                "keep the sum below 1"
            )
        if not isinstance(self.split_seed, int):
            raise DataError(f"split_seed={self.split_seed!r} is not valid; use an int")

    @property
    def task(self) -> str:
        """The registered task: "classification" or "segmentation"."""
        return get_dataset(self.dataset).task

    @property
    def uses_holdout_test(self) -> bool:
        """Whether the test split is carved out of train (always without an official test)."""
        return self.test_split == "holdout" or not get_dataset(self.dataset).official_test

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], data_root: str | os.PathLike[str] | None = None
    ) -> DataSpec:
        """Build a spec from the data keys of a flat trial config; other keys are ignored.

        Missing data keys take `DATA_DEFAULTS` (so a config without ``dataset`` reads Tiny
        ImageNet). ``data_dir`` follows `resolve_data_dir`: a folder under `data_root` (default
        `default_data_root()`), an absolute path, or None for the data set's default folder.
        """
        data = {**DATA_DEFAULTS, **{k: config[k] for k in CONFIG_KEYS if k in config}}
        path = resolve_data_dir(data["dataset"], data.pop("data_dir"), data_root)
        return cls(path=path, **data)


def _normalize_classes(classes: Any, seed: Any) -> tuple[ClassSelection, int | None]:
    if isinstance(classes, Mapping):
        unknown = set(classes) - {"n", "seed"}
        if unknown or "n" not in classes:
            raise DataError(
                f"classes={dict(classes)!r} is not valid; a dict needs 'n' and may have 'seed' "
                f"(unknown keys: {', '.join(map(str, sorted(unknown))) or 'none'})"
            )
        if seed is not None and classes.get("seed", seed) != seed:
            raise DataError(
                f"classes={dict(classes)!r} and class_seed={seed!r} disagree; give the seed once"
            )
        return _normalize_classes(classes["n"], classes.get("seed", seed))
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise DataError(f"class_seed={seed!r} is not valid; use an int or None")
    seed = None if seed is None else int(seed)
    if classes is None:
        return None, seed
    if isinstance(classes, int | np.integer) and not isinstance(classes, bool):
        if classes < 1:
            raise DataError(f"classes={classes!r} is not valid; the number of classes must be >= 1")
        return int(classes), seed
    if isinstance(classes, Sequence) and not isinstance(classes, str | bytes):
        names = tuple(str(c) for c in classes)
        if not names:
            raise DataError("classes=[] selects nothing; give class ids, a count, or None for all")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"classes lists {preview(dupes)} more than once; list each class once")
        if seed is not None:
            raise DataError(
                "class_seed only applies to classes=N (N drawn with the seed); "
                f"it was {seed!r} with an explicit class list"
            )
        return names, None
    raise DataError(
        f"classes={classes!r} is not valid; use None (all), an int N (first N, or drawn with "
        "class_seed), a list of class ids/names, or {'n': N, 'seed': S}"
    )


def select_classes(
    available: Sequence[str],
    classes: ClassSelection,
    class_seed: int | None,
    *,
    aliases: Mapping[str, str] | None = None,
    where: str = "the data set",
) -> list[str]:
    """Resolve a class selection against the ids a data set has, in label order.

    Args:
        available: the data set's class ids in its own order.
        classes: normalized selection (see the module docstring).
        class_seed: seed for drawing N classes; None takes the first N.
        aliases: optional name -> id map (Tiny ImageNet's human names) accepted in a list.
        where: what to name in errors (e.g. the wnids.txt path).
    """
    available = list(available)
    if classes is None:
        return available
    if isinstance(classes, int):
        if classes > len(available):
            raise DataError(
                f"classes={classes} but {where} has only {len(available)} classes; "
                f"use at most {len(available)}"
            )
        if class_seed is None:
            return available[:classes]
        rng = np.random.default_rng(class_seed)
        picked = np.sort(rng.choice(len(available), size=classes, replace=False))
        return [available[i] for i in picked]
    known = set(available)
    aliases = aliases or {}
    chosen, unknown = [], []
    for name in classes:
        if name in known:
            chosen.append(name)
        elif name in aliases and aliases[name] in known:
            chosen.append(aliases[name])
        else:
            unknown.append(name)
    if unknown:
        raise DataError(
            f"unknown class {preview(repr(u) for u in unknown)} (not in {where}); "
            f"valid ids include {preview(available, 8)}"
        )
    if len(set(chosen)) != len(chosen):
        raise DataError(f"classes {list(classes)!r} name the same class twice (by id and by name)")
    return chosen

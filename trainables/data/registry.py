"""Data-set registry: name -> where it lives, what it is, and how to read, fetch and fake it.

Each reader module calls :func:`register_dataset` once per data set it reads, the way model
families call ``trainables.models.register_family``. Everything else in the data layer (DataSpec,
`dataset_dir`, `load_bundle`, `ensure_downloaded`) looks the entry up by name, so adding a data set
means one new reader module plus its import in ``trainables/data/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError

if TYPE_CHECKING:  # spec and decode import this module; only their types are needed here
    from .decode import Source
    from .spec import DataSpec

TASKS = ("classification", "segmentation")


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set.

    Attributes:
        name: the config's ``dataset`` value.
        folder: default folder under the data root ("." = the root itself, torchvision's layout).
        markers: paths (relative to a data set folder) that identify one; a data root that has a
            marker but not `folder` is taken as the data set folder itself (see `dataset_dir`).
        task: "classification" or "segmentation".
        official_test: whether the data set ships its own test split (else always a holdout).
        reader: ``reader(spec) -> Source``: resolves classes and lists files, decodes lazily.
        synthetic: ``synthetic(folder, seed=0) -> folder``: writes a small copy in the real on-disk
            format, for tests and smoke runs (``folder`` is what `DataSpec.path` would be).
        download: ``download(folder, timeout)`` fetches the data set into ``folder``, raising
            OSError / RuntimeError / zipfile.BadZipFile on failure; None if it cannot be fetched.
        manual: what to do by hand, with ``{path}`` standing for the data set folder; shown when
            `download` is None or fails.
        url: where `download` fetches from (named in its error message).
        present: ``present(folder) -> bool``: whether the data set is complete there; None means
            "any marker exists".
        native_size: the side of the data set's own images before ``image_size`` resizes them
            (recorded with each evaluation, course B.1); None where the files decide (lunar).
    """

    name: str
    folder: str
    markers: tuple[str, ...]
    task: str
    official_test: bool
    reader: Callable[[DataSpec], Source]
    synthetic: Callable[..., Path]
    download: Callable[[Path, float], None] | None
    manual: str
    url: str = ""
    present: Callable[[Path], bool] | None = None
    native_size: int | None = None

    def is_present(self, folder: Path) -> bool:
        """Whether the data set is complete in `folder` (nothing to download)."""
        if self.present is not None:
            return self.present(folder)
        return any((folder / m).exists() for m in self.markers)

    def manual_hint(self, folder: Path) -> str:
        """`manual` with the data set folder filled in."""
        return self.manual.format(path=folder)


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    folder: str,
    markers: tuple[str, ...],
    task: str,
    official_test: bool,
    reader: Callable[[DataSpec], Source],
    synthetic: Callable[..., Path],
    download: Callable[[Path, float], None] | None,
    manual: str,
    url: str = "",
    present: Callable[[Path], bool] | None = None,
    native_size: int | None = None,
) -> DatasetEntry:
    """Register a data set (see `DatasetEntry` for the arguments) and return its entry.

    Raises:
        DataError: `name` is already registered, `task` is not one of TASKS, or `markers` is empty.
    """
    if name in _DATASETS:
        raise DataError(f"dataset {name!r} is already registered; pick another name")
    if task not in TASKS:
        raise DataError(f"task={task!r} for dataset {name!r} is not valid; use one of {TASKS}")
    if not markers:
        raise DataError(f"dataset {name!r} needs at least one layout marker file or folder")
    entry = DatasetEntry(
        name=name,
        folder=folder,
        markers=tuple(markers),
        task=task,
        official_test=official_test,
        reader=reader,
        synthetic=synthetic,
        download=download,
        manual=manual,
        url=url,
        present=present,
        native_size=native_size,
    )
    _DATASETS[name] = entry
    return entry


def list_datasets() -> list[str]:
    """Names of all registered data sets, sorted."""
    return sorted(_DATASETS)


def get_dataset(name: Any) -> DatasetEntry:
    """The entry of `name`; an unknown name raises a DataError listing the valid ones."""
    if not isinstance(name, str) or name not in _DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(list_datasets())}")
    return _DATASETS[name]

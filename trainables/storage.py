"""Where runs live: a local folder or a URI (file://, s3://, gs://), through one layer.

Ray Tune writes trial folders and checkpoints to `Location.ray_path` itself. archsweep's own
files of a run (study.json, evaluation/, ASHA decision logs, the lock) go through `Location`:
locally with atomic renames, remotely with single-object puts (atomic on S3 and GCS). The
driver works in a local mirror of those small files and uploads each after writing it; the
report downloads a remote run before reading it. pyarrow (a Ray dependency) is the filesystem;
credentials and endpoints come from the usual environment (AWS_ACCESS_KEY_ID,
AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS, ...).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss")


class StorageError(ValueError):
    """A storage location that cannot be used; the message names it and the fix."""


def scheme_of(uri: str) -> str | None:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep else None


class Location:
    """A folder in run storage: `Location("runs")`, `Location("s3://bucket/runs")`."""

    def __init__(self, where: str | os.PathLike[str]) -> None:
        text = str(where)
        scheme = scheme_of(text)
        if scheme == "file":
            text, scheme = text[len("file://") :], None
        if scheme is not None and scheme not in REMOTE_SCHEMES:
            raise StorageError(
                f"storage {text!r}: unknown scheme {scheme!r}; use a folder path, file://, "
                f"or one of {', '.join(s + '://' for s in REMOTE_SCHEMES)}"
            )
        self.uri = text.rstrip("/") if scheme else str(Path(text).absolute())
        self.remote = scheme is not None
        self._fs: Any = None
        self._fs_path: str | None = None

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __str__(self) -> str:
        return self.uri

    # --- paths -------------------------------------------------------------------------------
    def join(self, *parts: str) -> Location:
        if not self.remote:
            return Location(Path(self.uri, *parts))
        return Location("/".join([self.uri, *(p.strip("/") for p in parts)]))

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def local_path(self) -> Path:
        if self.remote:
            raise StorageError(f"{self.uri} is remote storage, not a local folder")
        return Path(self.uri)

    @property
    def ray_path(self) -> str:
        """What Ray Tune's `storage_path` takes for this location."""
        return self.uri

    def _resolve(self) -> tuple[Any, str]:
        if self._fs is None:
            import pyarrow.fs

            if self.remote:
                try:
                    self._fs, self._fs_path = pyarrow.fs.FileSystem.from_uri(self.uri)
                except Exception as err:  # pyarrow raises ArrowInvalid/OSError by scheme
                    raise StorageError(f"storage {self.uri}: {err}") from None
            else:
                self._fs, self._fs_path = pyarrow.fs.LocalFileSystem(), self.uri
        return self._fs, str(self._fs_path)

    @property
    def fs_path(self) -> str:
        """The path on the filesystem, as Ray reports trial paths (no scheme)."""
        return self._resolve()[1] if self.remote else self.uri

    def relative(self, path: str | os.PathLike[str] | None) -> str | None:
        """`path` (a Ray trial or checkpoint path) relative to this folder, when inside it."""
        if path is None:
            return None
        text = str(path)
        for root in {self.fs_path, str(Path(self.uri).resolve()) if not self.remote else ""}:
            if root and (text == root or text.startswith(root.rstrip("/") + "/")):
                return text[len(root.rstrip("/")) + 1 :]
        return text

    # --- files -------------------------------------------------------------------------------
    def exists(self) -> bool:
        import pyarrow.fs

        fs, path = self._resolve()
        return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound

    def is_file(self) -> bool:
        import pyarrow.fs

        fs, path = self._resolve()
        return fs.get_file_info(path).type == pyarrow.fs.FileType.File

    def read_bytes(self) -> bytes:
        fs, path = self._resolve()
        try:
            with fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            raise
        except OSError as err:
            raise StorageError(f"cannot read {self.uri}: {err}") from None

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """Whole-file write: temp file + rename locally, one put remotely."""
        if not self.remote:
            target = self.local_path
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            return
        fs, path = self._resolve()
        try:
            with fs.open_output_stream(path) as f:
                f.write(data)
        except OSError as err:
            raise StorageError(f"cannot write {self.uri}: {err}") from None

    def upload(self, local_file: Path) -> None:
        self.write_bytes(Path(local_file).read_bytes())

    def delete(self) -> None:
        fs, path = self._resolve()
        fs.delete_file(path)

    def glob_children(self, filename: str) -> list[Location]:
        """`<this>/<child>/<filename>` files, one level down (e.g. every run's study.json)."""
        import pyarrow.fs

        fs, path = self._resolve()
        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
        except OSError:
            return []
        found = []
        for info in infos:
            if info.type == pyarrow.fs.FileType.Directory:
                child = self.join(info.base_name, filename)
                if child.is_file():
                    found.append(child)
        return found

    def download(self, target: Path, exclude_dirs: tuple[str, ...] = ()) -> Path:
        """Copy this folder's tree into `target` (a local folder), skipping `exclude_dirs`
        names (e.g. checkpoints) at any depth."""
        import pyarrow.fs

        fs, root = self._resolve()
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
        if not infos and not self.exists():
            raise StorageError(f"{self.uri} does not exist")
        for info in infos:
            if info.type != pyarrow.fs.FileType.File:
                continue
            rel = info.path[len(root.rstrip("/")) + 1 :]
            if any(part.startswith(exclude_dirs) for part in rel.split("/")[:-1]) and exclude_dirs:
                continue
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as src:
                dest.write_bytes(src.read())
        return target


def mirror_dir(location: Location, cache_root: Path) -> Path:
    """The local folder that mirrors a remote run's small files on this machine."""
    digest = hashlib.sha256(location.uri.encode()).hexdigest()[:12]
    return cache_root / "remote-runs" / f"{location.name}-{digest}"


def fetch_local(path_or_uri: str, cache_root: Path) -> Path:
    """A local path for a file or folder that may be remote (a checkpoint in a bucket)."""
    location = Location(path_or_uri)
    if not location.remote:
        return location.local_path
    target = mirror_dir(location, cache_root)
    if not target.exists():
        if location.is_file():
            target.mkdir(parents=True)
            (target / location.name).write_bytes(location.read_bytes())
            return target / location.name
        location.download(target)
    elif (target / location.name).is_file():
        return target / location.name
    return target

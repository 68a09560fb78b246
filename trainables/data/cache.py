"""On-disk cache of decoded pools: decode once per machine, reload in a fraction of a second.

One ``.npz`` per key under the cache folder (``$ARCHSWEEP_CACHE``, else ``~/.cache/archsweep``).
The key hashes the data set, the resolved classes, the decode options (size, official test) and a
manifest of every source file (relative path, size, mtime), so a changed file or option gets a
new entry. Splits are not in the key: they are cheap index operations on the cached pool, so a new
split seed reuses the entry. Files are written to a temporary name and moved into place with
``os.replace`` (atomic on POSIX and Windows), so an interrupted build never leaves a half-written
entry. A corrupt entry (unreadable zip, failed CRC, wrong key) is reported with a warning naming
the file and rebuilt. A cache folder that cannot be written (read-only, full disk) is not an error:
the data is decoded without a cache, with one warning per folder. A temporary file left by a build
that was killed mid-write is deleted the next time the cache folder is used, once it is stale
(its writer's process is gone, or it is over an hour old).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .decode import Pool, Source, manifest
from .errors import DataWarning

CACHE_VERSION = 1  # bump when the stored arrays change meaning

# A temporary file this old is stale whoever wrote it: it is only written to after decoding, and
# writing even the largest pool takes seconds.
STALE_TMP_SECONDS = 3600.0
# <dataset>-<key prefix>.[<host>.<pid>.]<random>.tmp; older versions wrote no host and pid.
_TMP_NAME = re.compile(r"^.+-[0-9a-f]{24}\.(?:(?P<host>[^.]+)\.(?P<pid>\d+)\.)?[^.]+\.tmp$")
_warned_unwritable: set[Path] = set()


def default_cache_dir() -> Path:
    """``$ARCHSWEEP_CACHE`` if set, else ``~/.cache/archsweep``."""
    env = os.environ.get("ARCHSWEEP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archsweep"


def cache_key(source: Source) -> str:
    """Hex digest over data set, classes, decode options and the source-file manifest."""
    payload = {
        "version": CACHE_VERSION,
        "dataset": source.dataset,
        "task": source.task,
        "class_ids": source.class_ids,
        "class_names": source.class_names,
        "options": source.options,
        "manifest": manifest(source.root, source.files),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def cache_path(source: Source, cache_dir: Path, key: str) -> Path:
    """Where the entry of `key` lives: ``<cache_dir>/<dataset>-<key prefix>.npz``."""
    return Path(cache_dir) / f"{source.dataset}-{key[:24]}.npz"


class CorruptCache(Exception):
    """A cache entry that cannot be trusted (internal: triggers a rebuild)."""


def save_pool(pool: Pool, path: Path, key: str) -> None:
    """Write `pool` to `path` atomically (temporary file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "key": key,
        "task": pool.task,
        "class_ids": pool.class_ids,
        "class_names": pool.class_names,
        "skipped": pool.skipped,
    }
    # Any: numpy's stub would read **arrays as its allow_pickle flag.
    arrays: dict[str, Any] = {"train_images": pool.train_images}
    arrays["train_targets"] = pool.train_targets
    if pool.test_images is not None:
        arrays |= {"test_images": pool.test_images, "test_targets": pool.test_targets}
    # Host and pid in the name let a later run tell a dead writer's leftover from a live build.
    prefix = f"{path.stem}.{_host()}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # Uncompressed: loading speed matters more than disk here (uint8 compresses poorly).
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_pool(path: Path, key: str) -> Pool:
    """Read an entry; any sign of damage raises CorruptCache with the reason."""
    try:
        with np.load(path, allow_pickle=False) as z:
            # Reading each member to the end makes zipfile verify its CRC-32.
            data = {name: z[name] for name in z.files}
        meta = json.loads(str(data.pop("meta")))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CorruptCache(f"{type(exc).__name__}: {exc}") from exc
    if meta.get("key") != key:
        raise CorruptCache("its stored key does not match its name")
    if "train_images" not in data or "train_targets" not in data:
        raise CorruptCache("train arrays missing")
    return Pool(
        meta["task"],
        meta["class_ids"],
        meta["class_names"],
        data["train_images"],
        data["train_targets"],
        data.get("test_images"),
        data.get("test_targets"),
        meta.get("skipped", []),
    )


def load_or_build(source: Source, cache_dir: Path | None = None) -> tuple[Pool, Path | None, bool]:
    """(pool, cache file, True if it came from the cache); decodes and stores on a miss.

    The cache file is None when the cache folder cannot be written: the pool is then decoded
    without a cache, and a DataWarning (once per folder) says so.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    remove_stale_tmp(cache_dir)
    key = cache_key(source)
    path = cache_path(source, cache_dir, key)
    if _exists(path):
        try:
            return load_pool(path, key), path, True
        except CorruptCache as exc:
            warnings.warn(
                f"cache file {path} is corrupt ({exc}); deleting and rebuilding it",
                DataWarning,
                stacklevel=3,
            )
            path.unlink(missing_ok=True)
    pool = source.decode()
    try:
        save_pool(pool, path, key)
    except OSError as exc:
        _warn_unwritable(cache_dir, exc)
        return pool, None, False
    return pool, path, False


def remove_stale_tmp(cache_dir: Path, max_age_s: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete the temporary files of cache builds that were killed mid-write; returns them.

    Only names this module writes are touched (the folder may be shared with other files). A
    file is stale when its writer ran on this host and is no longer alive, or when it is older
    than `max_age_s` (a writer on another host cannot be asked).
    """
    try:
        candidates = [p for p in Path(cache_dir).glob("*.tmp") if _TMP_NAME.match(p.name)]
    except OSError:
        return []
    removed = []
    for tmp in candidates:
        if _is_stale(tmp, max_age_s):
            try:
                tmp.unlink()
            except OSError:  # gone meanwhile, or a read-only folder: nothing to clean up
                continue
            removed.append(tmp)
    return removed


def _is_stale(tmp: Path, max_age_s: float) -> bool:
    try:
        age = time.time() - tmp.stat().st_mtime
    except OSError:
        return False
    if age > max_age_s:
        return True
    match = _TMP_NAME.match(tmp.name)
    if match and match["pid"] and match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _host() -> str:
    # Dots would be ambiguous in the temporary file's name.
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # an unreadable cache folder: treated as a miss
        return False


def _warn_unwritable(cache_dir: Path, exc: OSError) -> None:
    if cache_dir in _warned_unwritable:
        return
    _warned_unwritable.add(cache_dir)
    warnings.warn(
        f"cache folder {cache_dir} cannot be written ({exc.strerror or exc}); decoding without "
        "a cache (each run decodes again). Set $ARCHSWEEP_CACHE to a writable folder to cache",
        DataWarning,
        stacklevel=3,
    )

"""`ensure_downloaded`: fetch a missing data set for online users; fail fast and clearly offline.

`load_bundle` never downloads (clusters and offline machines should not try); call this once on
the driver. What to fetch and from where is each data set's registry entry (`register_dataset`):
Tiny ImageNet's zip from the CS231n site, MNIST, FashionMNIST and CIFAR-10 through torchvision's
downloaders; the lunar set has no public URL, so its entry only says where to put it.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError
from .registry import get_dataset
from .spec import DataSpec


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every socket operation inside the block (torchvision's downloaders take no timeout)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def ensure_downloaded(spec: DataSpec, *, timeout: float = 10.0) -> Path:
    """Return `spec.path`, downloading the data set first if it is not there.

    Args:
        spec: the data set and its folder.
        timeout: seconds per network operation; offline machines fail within about this time.

    Raises:
        DataError: the download failed (offline, server down) or the data set cannot be
            downloaded; the message names the folder to put the files in and the URL.
    """
    entry = get_dataset(spec.dataset)
    if entry.is_present(spec.path):
        return spec.path
    if entry.download is None:
        raise DataError(
            f"the {entry.name} data set is not in {spec.path} and cannot be downloaded "
            f"automatically; {entry.manual_hint(spec.path)}"
        )
    try:
        with socket_timeout(timeout):
            entry.download(spec.path, timeout)
    except (OSError, RuntimeError, zipfile.BadZipFile) as exc:  # URLError is an OSError
        raise DataError(
            f"could not download {entry.name} from {entry.url} ({type(exc).__name__}: {exc}). "
            f"Download it by hand: {entry.manual_hint(spec.path)}"
        ) from exc
    return spec.path


def fetch_zip_folder(url: str, top: str, dest: Path, timeout: float) -> None:
    """Download the zip at `url` and move its single top folder `top` to `dest`.

    Everything happens in a temporary folder next to `dest`, so a failed download leaves no
    partial `dest` behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        archive = Path(tmp) / "download.zip"
        with urllib.request.urlopen(url, timeout=timeout) as resp, archive.open("wb") as f:
            shutil.copyfileobj(resp, f, length=1 << 20)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        shutil.move(str(Path(tmp) / top), str(dest))

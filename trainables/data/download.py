"""`ensure_downloaded`: fetch a missing data set for online users; fail fast and clearly offline.

`load_bundle` never downloads (clusters and offline machines should not try); call this once on
the driver. Tiny ImageNet comes from the CS231n site as a zip; MNIST and CIFAR-10 through
torchvision's own downloaders. The lunar set has no public direct URL, so it is only checked.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError
from .mnist_cifar import CIFAR_URL, MNIST_URL, cifar_pickle_root, mnist_present, mnist_raw_dir
from .segmentation import LAYOUT_HINT as LUNAR_HINT
from .spec import DataSpec
from .tiny_imagenet import URL as TINY_IMAGENET_URL


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's downloaders take no timeout argument; a default socket timeout bounds them.
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _present(spec: DataSpec) -> bool:
    path = spec.path
    if spec.dataset == "tiny_imagenet":
        return (path / "wnids.txt").is_file() and (path / "train").is_dir()
    if spec.dataset == "mnist":
        return mnist_present(path)
    if spec.dataset == "cifar10":
        return cifar_pickle_root(path) is not None or (path / "train").is_dir()
    return (path / "images" / "render").is_dir() and (path / "images" / "ground").is_dir()


def ensure_downloaded(spec: DataSpec, *, timeout: float = 10.0) -> Path:
    """Return `spec.path`, downloading the data set first if it is not there.

    Args:
        spec: the data set and its folder.
        timeout: seconds per network operation; offline machines fail within about this time.

    Raises:
        DataError: the download failed (offline, server down) or the data set cannot be
            downloaded; the message names the folder to put the files in and the URL.
    """
    if _present(spec):
        return spec.path
    if spec.dataset == "lunar":
        raise DataError(
            f"the lunar data set is not in {spec.path} and cannot be downloaded automatically; "
            f"put MOON_SEGMENTATION_BINARY there ({LUNAR_HINT})"
        )
    fetchers: dict[str, tuple[Callable[[DataSpec, float], None], str, Path]] = {
        "tiny_imagenet": (_fetch_tiny_imagenet, TINY_IMAGENET_URL, spec.path),
        "mnist": (_fetch_torchvision, MNIST_URL, mnist_raw_dir(spec.path)),
        "cifar10": (_fetch_torchvision, CIFAR_URL, spec.path),
    }
    fetch, url, target = fetchers[spec.dataset]
    try:
        with _socket_timeout(timeout):
            fetch(spec, timeout)
    except (OSError, RuntimeError, zipfile.BadZipFile) as exc:  # URLError is an OSError
        raise DataError(
            f"could not download {spec.dataset} from {url} ({type(exc).__name__}: {exc}). "
            f"Download it by hand and put the files in {target}"
        ) from exc
    return spec.path


def _fetch_tiny_imagenet(spec: DataSpec, timeout: float) -> None:
    dest = spec.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        archive = Path(tmp) / "tiny-imagenet-200.zip"
        with (
            urllib.request.urlopen(TINY_IMAGENET_URL, timeout=timeout) as resp,
            archive.open("wb") as f,
        ):
            shutil.copyfileobj(resp, f, length=1 << 20)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        # The zip holds one top folder, tiny-imagenet-200/; move it to whatever dest is called.
        shutil.move(str(Path(tmp) / "tiny-imagenet-200"), str(dest))


def _fetch_torchvision(spec: DataSpec, timeout: float) -> None:
    from torchvision.datasets import CIFAR10, MNIST

    del timeout  # bounded by _socket_timeout
    if spec.dataset == "mnist":
        root = mnist_raw_dir(spec.path).parent.parent
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    else:
        spec.path.mkdir(parents=True, exist_ok=True)
        CIFAR10(str(spec.path), train=True, download=True)

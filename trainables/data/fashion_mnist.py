"""FashionMNIST: 28x28 grayscale clothing, 10 classes, in torchvision's idx layout.

```
<data root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
```

What ``torchvision.datasets.FashionMNIST(root, download=True)`` writes; `ensure_downloaded` does
exactly that for online users. Class ids are the labels "0".."9"; a class list may also use the
names ("Coat", "Bag").
"""

from __future__ import annotations

from pathlib import Path

from .decode import Source
from .idx import idx_present, idx_source, torchvision_download, write_idx_dataset
from .registry import register_dataset
from .spec import DataSpec

FOLDER = "FashionMNIST"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def fashion_mnist_source(spec: DataSpec) -> Source:
    """The reader: the idx files through torchvision (one vectorised read per split)."""
    return idx_source(spec, FOLDER, CLASS_NAMES, URL)


def _download(folder: Path, timeout: float) -> None:
    del timeout  # bounded by ensure_downloaded's socket timeout
    torchvision_download(folder, FOLDER)


def write_fashion_mnist(root: str | Path, seed: int = 0, **kwargs: int) -> Path:
    """A small synthetic FashionMNIST in the real idx layout (see `write_idx_dataset`)."""
    return write_idx_dataset(root, FOLDER, seed=seed, **kwargs)


register_dataset(
    "fashion_mnist",
    folder=".",  # torchvision's root layout: the data root holds FashionMNIST/raw/
    markers=(FOLDER,),
    task="classification",
    official_test=True,
    reader=fashion_mnist_source,
    synthetic=write_fashion_mnist,
    download=_download,
    manual=f"put the four uncompressed idx files in {{path}}/{FOLDER}/raw (from {URL})",
    url=URL,
    present=lambda folder: idx_present(folder, FOLDER),
    native_size=28,
)

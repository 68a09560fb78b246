"""archsweep's data layer: readers, the on-disk cache, splits, batched augmentation, loaders.

```python
from trainables.data import DataSpec, load_bundle, TensorLoader, AugmentConfig
bundle = load_bundle(DataSpec("tiny_imagenet", classes=10, image_size=None))
loader = TensorLoader(bundle.train, 128, "cuda", augment=AugmentConfig(hflip=True, crop_padding=4),
                      mean=bundle.mean, std=bundle.std)
```

Data sets are registered by their reader modules (`register_dataset`); importing this package
imports every reader module below (fashion_mnist, mnist_cifar, segmentation, tiny_imagenet), so
`list_datasets()` is complete after ``import trainables.data``. To add a data set, write its
reader module and import it here.
"""

from .augment import AugmentConfig, augment_batch
from .bundle import DataBundle, Split, channel_stats, load_bundle
from .cache import default_cache_dir
from .download import ensure_downloaded
from .errors import DataError, DataWarning
from .fashion_mnist import write_fashion_mnist
from .loader import TensorLoader
from .lunar_synth import write_lunar
from .mnist_cifar import write_mnist
from .registry import DatasetEntry, get_dataset, list_datasets, register_dataset
from .segmentation import binarize_mask, list_pairs
from .source import BundleCache, data_summary
from .spec import DATA_DEFAULTS, DataSpec, dataset_dir, default_data_root, resolve_data_dir
from .split import stratified_split
from .synthetic import write_image_folder, write_tiny_imagenet
from .tiny_imagenet import TinyImageNetDataset

__all__ = [
    "DATA_DEFAULTS",
    "AugmentConfig",
    "BundleCache",
    "DataBundle",
    "DataError",
    "DataSpec",
    "DataWarning",
    "DatasetEntry",
    "Split",
    "TensorLoader",
    "TinyImageNetDataset",
    "augment_batch",
    "binarize_mask",
    "channel_stats",
    "data_summary",
    "dataset_dir",
    "default_cache_dir",
    "default_data_root",
    "ensure_downloaded",
    "get_dataset",
    "list_datasets",
    "list_pairs",
    "load_bundle",
    "register_dataset",
    "resolve_data_dir",
    "stratified_split",
    "write_fashion_mnist",
    "write_image_folder",
    "write_lunar",
    "write_mnist",
    "write_tiny_imagenet",
]

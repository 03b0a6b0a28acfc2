"""Datasets (built-in, named, image folders), their disk cache and the batches (CPU and device)."""

from nas.data._datasets import BUILTIN, CIFAR10_FILE, Dataset, datasets_cache, load_dataset, val_share
from nas.data._diskarray import DiskArray, channel_moments, write_rows
from nas.data._feed import device_batches
from nas.data._imagefolder import decode_threads

__all__ = [
    "BUILTIN",
    "CIFAR10_FILE",
    "Dataset",
    "DiskArray",
    "channel_moments",
    "datasets_cache",
    "decode_threads",
    "device_batches",
    "load_dataset",
    "val_share",
    "write_rows",
]

"""Batches made on the training device (nas.data._feed): the same images, order and augmentation as
Dataset.batches for a seed, resident or streamed by a reader thread, on the CPU here and on a
GPU where there is one."""

import threading

import numpy as np
import pytest
import torch
from conftest import png_folder

from nas.data import device_batches, load_dataset


@pytest.fixture(scope="module")
def builtin():
    return load_dataset("builtin").subset(train=300, val=50)


def _host_epoch(ds, seed, **kw):
    return list(ds.batches(32, np.random.default_rng(seed), **kw))


@pytest.mark.parametrize("resident", [True, False])
@pytest.mark.parametrize("augment", [True, False])
def test_device_batches_equal_the_numpy_batches_bit_for_bit(builtin, resident, augment):
    ref = _host_epoch(builtin, 3, augment=augment, limit=250)
    got = list(device_batches(builtin, 32, np.random.default_rng(3), "cpu", augment=augment, limit=250,
                              resident=resident))
    assert len(got) == len(ref) == 8
    for (x, y), (rx, ry) in zip(got, ref):
        assert x.dtype == torch.float32 and x.shape == rx.shape and x.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(x, torch.from_numpy(rx)) and torch.equal(y, torch.from_numpy(ry))


def test_an_image_folder_streams_from_its_disk_cache_with_the_same_batches(tmp_path):
    ds = load_dataset(png_folder(tmp_path / "imgs", n=40, size=24))
    ref = _host_epoch(ds, 1)
    got = list(device_batches(ds, 32, np.random.default_rng(1), "cpu", resident=False))
    assert len(got) == len(ref) and all(torch.equal(x, torch.from_numpy(rx)) for (x, _), (rx, _) in zip(got, ref))
    assert ds.x_train.shape[1:] == (24, 24, 3)  # rgb: the crop pads and gathers every channel


def test_the_reader_thread_stops_when_training_stops_early_or_fails(builtin):
    before = threading.active_count()
    feed = device_batches(builtin, 16, np.random.default_rng(0), "cpu", resident=False)
    next(feed)
    feed.close()  # training reached its step count mid-epoch
    assert threading.active_count() == before

    class Broken:  # a read that fails (e.g. the cache file vanished) surfaces in the trainer
        shape = builtin.x_train.shape

        def __len__(self):
            return len(builtin.x_train)

        def __getitem__(self, idx):
            raise OSError("cache file gone")

    ds = builtin.subset()
    ds.x_train = Broken()
    with pytest.raises(OSError, match="cache file gone"):
        list(device_batches(ds, 16, np.random.default_rng(0), "cpu", resident=False))
    assert threading.active_count() == before


def test_the_device_copy_is_not_pickled(builtin):
    import pickle

    ds = builtin.subset()
    next(device_batches(ds, 16, np.random.default_rng(0), "cpu", resident=True))
    assert "_on_device" in ds.__dict__ and "_on_device" not in pickle.loads(pickle.dumps(ds)).__dict__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_batches_match_the_cpu_ones(builtin):
    for resident in (True, False):
        got = list(device_batches(builtin, 32, np.random.default_rng(5), "cuda", resident=resident))
        ref = _host_epoch(builtin, 5)
        assert got[0][0].device.type == "cuda"
        for (x, y), (rx, ry) in zip(got, ref):
            assert torch.allclose(x.cpu(), torch.from_numpy(rx), atol=1e-6) and torch.equal(y.cpu(),
                                                                                            torch.from_numpy(ry))

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import png_folder

import nas
from nas.data import load_dataset
from nas.errors import DatasetError


def test_builtin_dataset_is_shipped_and_split():
    ds = load_dataset("builtin")
    assert (ds.resolution, ds.in_channels, ds.num_classes) == (28, 1, 10)
    # a quarter held out for validation: 2,000 images would be a third of this small set
    assert len(ds.x_train) == 4500 and len(ds.x_val) == 1500 and len(ds.x_test) == 1000
    assert np.bincount(ds.y_val).tolist() == [150] * 10  # stratified
    x, y = ds.test_arrays()
    assert x.dtype == np.float32 and x.shape == (1000, 1, 28, 28) and y.dtype == np.int64
    xt = ds.normalize(ds.x_train)
    assert abs(float(xt.mean())) < 0.01 and abs(float(xt.std()) - 1) < 0.01
    assert "Fashion-MNIST" in ds.describe()


def test_split_is_seeded():
    a, b, c = load_dataset("builtin", seed=1), load_dataset("builtin", seed=1), load_dataset("builtin", seed=2)
    assert np.array_equal(a.y_val, b.y_val) and np.array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_batches_augment_and_cover_an_epoch():
    ds = load_dataset("builtin").subset(train=500, val=100)
    rng = np.random.default_rng(0)
    got = list(ds.batches(128, rng))
    assert sum(len(y) for _, y in got) == len(ds.x_train)
    assert got[0][0].shape[1:] == (1, 28, 28)


def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return p


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    p = _npz(tmp_path, x_train=rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8),
             y_train=np.repeat(np.arange(4), 10), x_test=rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8),
             y_test=np.repeat(np.arange(4), 2))
    ds = load_dataset(p)
    assert ds.num_classes == 4 and ds.in_channels == 3 and ds.resolution == 16


@pytest.mark.parametrize("arrays, needle", [
    (dict(x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(4)), "missing keys x_test, y_test"),
    (dict(x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 0, 1, -1]),
          x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.zeros(2)), "negative label"),
    (dict(x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 0, 1, 1]),
          x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 1]),
          class_names=np.array(["a"])), "out of range"),
    (dict(x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 0, 0, 2]),
          x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 2])), "fewer than 2 training images"),
    (dict(x_train=np.zeros((4, 8, 6), np.uint8), y_train=np.array([0, 0, 1, 1]),
          x_test=np.zeros((2, 8, 6), np.uint8), y_test=np.array([0, 1])), "square images"),
    (dict(x_train=np.full((4, 8, 8), np.nan), y_train=np.array([0, 0, 1, 1]),
          x_test=np.zeros((2, 8, 8)), y_test=np.array([0, 1])), "finite"),
])
def test_bad_npz_is_a_clear_error(tmp_path, arrays, needle):
    with pytest.raises(DatasetError, match=needle):
        load_dataset(_npz(tmp_path, **arrays))


def test_missing_and_corrupt_paths(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable"):
        load_dataset(bad)


def test_image_folder(tmp_path):
    ds = load_dataset(png_folder(tmp_path / "imgs"))
    assert ds.class_names == ["cat", "dog"] and ds.in_channels == 3 and ds.resolution == 12
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 12
    gray = load_dataset(png_folder(tmp_path / "g", mode="L"), image_size=8)
    assert gray.in_channels == 1 and gray.resolution == 8


def test_every_unreadable_image_of_a_folder_is_named_in_one_error(tmp_path):
    """Not one per run (the user fixes one, runs again, hits the next): the three corrupt files,
    the first one included (it is also the file probed for the mode and side), in one error."""
    root = png_folder(tmp_path / "imgs")
    bad = [root / "cat" / "0.png", root / "cat" / "3.png", root / "dog" / "5.png"]
    bad[0].write_bytes(b"not an image")
    bad[1].write_bytes(bad[1].read_bytes()[:40])  # a truncated PNG
    bad[2].write_bytes(b"")
    cache = Path(os.environ["HWNAS_CACHE"])
    before = sorted(cache.rglob("*.npy"))
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    assert sorted(cache.rglob("*.npy")) == before  # no cache of a folder with holes
    msg = str(info.value)
    assert "3 images cannot be read" in msg and "\n" not in msg
    for f in bad:
        assert f"{f.parent.name}/{f.name} (" in msg
    assert msg.count(str(root)) == 1  # each file named relative to the folder
    for f in bad:  # fixed: the folder loads
        f.unlink()
    assert len(load_dataset(root).class_names) == 2


def test_an_unreadable_image_error_shows_ten_and_counts_the_rest(tmp_path):
    root = png_folder(tmp_path / "imgs", n=8)
    for c in ("cat", "dog"):
        for i in range(1, 7):
            (root / c / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match=r"12 images cannot be read .*; and 2 more$") as info:
        load_dataset(root)
    assert str(info.value).count(" (cannot identify image file") == 10


def test_image_folder_is_decoded_once_to_disk_and_read_a_batch_at_a_time(tmp_path):
    import os

    from nas.data import DiskArray
    from nas.data._datasets import _resize
    from nas.train import evaluate_proxy

    root = png_folder(tmp_path / "imgs", n=40, size=24)
    seen = []
    ds = load_dataset(root, progress=lambda what, done, total: seen.append((what, done, total)))
    assert isinstance(ds.x_train, DiskArray) and isinstance(ds.x_test, DiskArray)
    bars = {what: (done, total) for what, done, total in seen}  # a progress bar per stage, each run to its end
    assert set(bars) == {"decoding imgs/train images", "decoding imgs/test images", "counting imgs pixel statistics"}
    assert all(done == total for done, total in bars.values())
    files = sorted(p for p in (Path(os.environ["HWNAS_CACHE"]) / "datasets" / "folders").rglob("*.npy"))
    assert {f.name for f in files} >= {"train.npy", "test.npy"}
    stamp, n_first = {f: f.stat().st_mtime_ns for f in files}, len(seen)
    again = load_dataset(root, progress=lambda *a: seen.append(a))
    assert len(seen) == n_first  # nothing decoded or counted again
    assert all(f.stat().st_mtime_ns == t for f, t in stamp.items())
    # the same pixels as decoding in memory
    from PIL import Image

    first = sorted((root / "cat").glob("*.png"))[0]
    ref = np.asarray(Image.open(first).convert("RGB"))
    everything = np.concatenate([again.x_train[np.arange(len(again.x_train))], again.x_val[0:len(again.x_val)],
                                 again.x_test[0:len(again.x_test)]])
    assert any(np.array_equal(ref, im) for im in everything)
    # a worker gets a few bytes (the paths), not the images, and reads the same batches
    blob = pickle.dumps(again)
    assert len(blob) < 20_000
    copy = pickle.loads(blob)
    b1 = next(again.batches(8, np.random.default_rng(0)))
    b2 = next(copy.batches(8, np.random.default_rng(0)))
    assert np.array_equal(b1[0], b2[0]) and np.array_equal(b1[1], b2[1])
    # the proxy's side is resized once onto disk, equal to resizing in memory
    small = again.at_resolution(12)
    assert isinstance(small.x_train, DiskArray) and small.x_train.path.parent == again.x_train.path.parent
    assert np.array_equal(small.x_train[0:5], _resize(again.x_train[0:5], 12))
    xv, yv = again.val_arrays(resolution=12, limit=3)
    assert xv.shape == (3, 3, 12, 12) and xv[0:3].dtype == np.float32 and len(yv) == 3
    r = evaluate_proxy(nas.load_space("mobilenetv2").reference("mobilenet_v2_0.35_224"), again, epochs=1,
                       max_train_images=32, resolution=16)
    assert not r.failed and 0 <= r.accuracy <= 1
    # a changed file is a different folder: decoded again
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(first)
    os.utime(first, ns=(1, 1))
    n = len(seen)
    load_dataset(root, progress=lambda *a: seen.append(a))
    assert len(seen) > n


def test_channel_moments_are_exact_and_kept_beside_a_disk_split(tmp_path):
    from nas.data import DiskArray, channel_moments, write_rows

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    x[:, :, :, 2] = 7  # a constant channel: std floored, not zero

    def reference(a):
        f = a.reshape(-1, a.shape[-1]).astype(np.float64) / 255.0
        return f.mean(0), np.maximum(f.std(0), 1e-3)

    mean, std = channel_moments(x, chunk=16)
    ref_mean, ref_std = reference(x)
    assert mean.dtype == np.float32 and np.allclose(mean, ref_mean, rtol=1e-6) and np.allclose(std, ref_std, rtol=1e-5)
    assert std[2] == np.float32(1e-3)
    disk = write_rows(tmp_path / "x.npy", len(x), x.shape[1:], lambda out, a, b: out.__setitem__(slice(None), x[a:b]))
    split = disk.take(np.arange(0, 50, 2))
    got = channel_moments(split, chunk=7)
    assert np.allclose(got[0], reference(x[::2])[0], rtol=1e-6)
    kept = sorted(tmp_path.glob("x.moments.*.json"))
    assert len(kept) == 1  # a later load reads these few bytes, not every image
    kept[0].write_text('{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}')
    assert np.allclose(channel_moments(DiskArray(disk.path, split.index))[1], 0.25)  # read back, not counted
    other = channel_moments(disk.take(np.arange(1, 50, 2)))  # other rows: another key
    assert np.allclose(other[0], reference(x[1::2])[0], rtol=1e-6)
    kept[0].write_text("not json")  # unreadable: counted again
    assert np.allclose(channel_moments(split)[0], got[0])


def test_image_folder_decodes_on_several_threads_to_the_same_pixels(tmp_path, monkeypatch):
    root = png_folder(tmp_path / "imgs", n=30, size=20)
    got = []
    for threads in ("1", "3"):
        monkeypatch.setenv("HWNAS_DECODE_THREADS", threads)
        monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / f"cache{threads}"))  # decoded afresh each time
        ds = load_dataset(root, image_size=16)
        got.append(np.concatenate([ds.x_train[0:len(ds.x_train)], ds.x_test[0:len(ds.x_test)]]))
    assert got[0].shape == (60 - len(ds.x_val), 16, 16, 3) and np.array_equal(got[0], got[1])
    monkeypatch.setenv("HWNAS_DECODE_THREADS", "many")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache_bad"))
    with pytest.raises(DatasetError, match="HWNAS_DECODE_THREADS"):
        load_dataset(root)
    monkeypatch.setenv("HWNAS_DECODE_THREADS", "3")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG garbage")  # an error in a decoding thread
    with pytest.raises(DatasetError, match="broken.png"):
        load_dataset(root)
    assert not [p for p in (tmp_path / "cache_bad").rglob("*.npy")]  # nothing half-written


def test_image_folder_errors(tmp_path):
    root = png_folder(tmp_path / "imgs")
    (root / "empty").mkdir()
    with pytest.raises(DatasetError, match="'empty' has no images"):
        load_dataset(root)
    root2 = png_folder(tmp_path / "imgs2")
    (root2 / "cat" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DatasetError, match="broken.png"):
        load_dataset(root2)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="no class subfolders"):
        load_dataset(tmp_path / "flat")


def _cifar_archive(path, n_per_batch=20):
    rng = np.random.default_rng(0)

    def add(tar, name, obj):
        data = pickle.dumps(obj)
        info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            add(tar, f"data_batch_{i}", {b"data": rng.integers(0, 255, (n_per_batch, 3072), dtype=np.uint8),
                                         b"labels": [j % 10 for j in range(n_per_batch)]})
        add(tar, "test_batch", {b"data": rng.integers(0, 255, (10, 3072), dtype=np.uint8),
                                b"labels": list(range(10))})
        add(tar, "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return path


def test_cifar10_archive_format(tmp_path, monkeypatch):
    arch = _cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    ds = load_dataset(arch)
    assert ds.resolution == 32 and ds.in_channels == 3 and ds.num_classes == 10
    assert len(ds.x_train) + len(ds.x_val) == 100
    # by name, from the cache folder
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "datasets").mkdir(parents=True)
    arch.rename(tmp_path / "cache" / "datasets" / "cifar-10-python.tar.gz")
    assert load_dataset("cifar10").num_classes == 10


def test_cifar10_missing_offline_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    with pytest.raises(DatasetError, match=str(tmp_path / "datasets")):
        load_dataset("cifar10", download=False)


def test_pickles_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = pickle.dumps({b"data": Evil()})
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_dataset(path)


def test_the_validation_split_is_2000_images_where_the_data_allows():
    from nas.data import val_share

    assert val_share(10_000) == 0.2  # the CIFAR-10 subset: 2,000 of 10,000
    assert val_share(50_000) == 0.1  # full CIFAR-10: 10% is more than 2,000
    assert val_share(6_000) == 0.25  # small data: never more than a quarter


def test_an_unwritable_image_cache_is_one_clear_error(tmp_path, monkeypatch):
    root = png_folder(tmp_path / "imgs")
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("HWNAS_CACHE", str(blocked))
    with pytest.raises(DatasetError, match="cannot write the image cache"):
        load_dataset(root)
    assert blocked.read_text() == "not a folder"  # nothing lost

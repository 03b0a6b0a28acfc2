import io
import pickle
import tarfile

import numpy as np
import pytest

from nas.data import DatasetError, load_dataset


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


def _png_folder(root, classes=("cat", "dog"), n=6, size=12, mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root


def test_image_folder(tmp_path):
    ds = load_dataset(_png_folder(tmp_path / "imgs"))
    assert ds.class_names == ["cat", "dog"] and ds.in_channels == 3 and ds.resolution == 12
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 12
    gray = load_dataset(_png_folder(tmp_path / "g", mode="L"), image_size=8)
    assert gray.in_channels == 1 and gray.resolution == 8


def test_image_folder_errors(tmp_path):
    root = _png_folder(tmp_path / "imgs")
    (root / "empty").mkdir()
    with pytest.raises(DatasetError, match="'empty' has no images"):
        load_dataset(root)
    root2 = _png_folder(tmp_path / "imgs2")
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

"""Scoring a split a batch at a time (issue 24 item 7): ``Dataset.eval_batches`` gives exactly the
values of the whole-split arrays, and every accuracy hwnas reports (the proxy's validation score,
the winner's torch and ONNX test accuracy) is the number the whole-split path gave."""

import numpy as np
import pytest
import torch
from conftest import TINY_PROXY, png_folder

import nas
from nas.data import load_dataset
from nas.errors import DatasetError
from nas.export import export_onnx, onnx_accuracy, onnx_accuracy_batches
from nas.models import apply_fake_quant, build_model
from nas.train import evaluate_batches, evaluate_model, evaluate_proxy, load_state


def _joined(batches):
    xs, ys = zip(*batches)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """A colour image folder (on disk, through the cache): 2 classes of 40 px photos."""
    return load_dataset(png_folder(tmp_path_factory.mktemp("f") / "photos", n=30, size=40))


def _same(batches, arrays):
    x, y = _joined(batches)
    want_x, want_y = arrays
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, np.asarray(want_x)) and np.array_equal(y, want_y)


def test_eval_batches_are_the_whole_split_arrays_a_batch_at_a_time(colour):
    ds = load_dataset("builtin")
    got = list(ds.eval_batches("test", batch_size=300))
    assert [len(y) for _, y in got] == [300, 300, 300, 100] and got[0][0].shape == (300, 1, 28, 28)
    _same(got, ds.test_arrays())
    _same(ds.eval_batches("val", limit=333, batch_size=64), ds.val_arrays(limit=333))
    # at another side, not made before: each batch resized as it is read, the same pixels
    assert 20 not in ds.__dict__.get("_resized", {})
    _same(ds.eval_batches("test", resolution=20, batch_size=128), ds.test_arrays(resolution=20))
    _same(ds.eval_batches("test", resolution=20), ds.at_resolution(20).test_arrays())  # the copy, once made
    _same(ds.eval_batches("val", resolution=20, limit=50), ds.val_arrays(resolution=20, limit=50))
    # with a limit, once the copy at that side exists: the first images of that split (this gave the
    # whole validation split, whichever split was asked for, before)
    x, y = ds.test_arrays(resolution=20, limit=50)
    assert np.array_equal(x, ds.at_resolution(20).test_arrays()[0][:50]) and np.array_equal(y, ds.y_test[:50])
    # large images come fewer to a batch: the batch, not the split, bounds the memory
    assert ds.eval_batch_size() == 256 and ds.eval_batch_size(224) == (16 << 20) // (4 * 224 * 224) == 83
    got = list(ds.eval_batches("test", resolution=224, limit=200))
    assert [len(y) for _, y in got] == [83, 83, 34]
    _same(got, ds.test_arrays(resolution=224, limit=200))
    # an image folder: read from the disk cache, at its own side and at another
    for split, arrays in (("test", colour.test_arrays), ("val", colour.val_arrays)):
        _same(colour.eval_batches(split, batch_size=7), arrays())
        _same(colour.eval_batches(split, resolution=24, batch_size=5), arrays(resolution=24))
    assert colour.in_channels == 3


@pytest.mark.parametrize("kwargs, msg", [(dict(split="train"), "split must be one of val, test"),
                                         (dict(resolution=0), "resolution must be a positive whole number"),
                                         (dict(batch_size=0), "batch_size must be a positive whole number")])
def test_bad_arguments_fail_when_asked_not_at_the_first_batch(kwargs, msg):
    ds = load_dataset("builtin")
    with pytest.raises(DatasetError, match=msg):
        ds.eval_batches(**kwargs)


def _trained(ds, cand):
    """A briefly trained candidate (the proxy's own run) and its result."""
    r = evaluate_proxy(cand, ds, seed=0, keep_state=True, **TINY_PROXY)
    assert not r.failed, r.reason
    data = ds.at_resolution(r.resolution)
    model = build_model(cand, data.num_classes, data.in_channels, resolution=r.resolution)
    apply_fake_quant(model)
    model.load_state_dict(load_state(r.state)["model"])
    return r, data, model.eval()


@pytest.mark.parametrize("which", ["builtin", "colour"])
def test_accuracies_are_the_numbers_the_whole_split_gave(which, colour, tmp_path):
    """The proxy's validation accuracy and loss, and a model's torch and ONNX test accuracy, read a
    batch at a time, equal those of the whole split held as one float32 array (the path before)."""
    ds = load_dataset("builtin").subset(train=600, val=400) if which == "builtin" else colour
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace(resolution=160)
    r, data, model = _trained(ds, cand)
    xv, yv = data.val_arrays(limit=TINY_PROXY["max_val_images"])
    xv = np.asarray(xv)  # the whole split in memory, as evaluate_proxy held it before
    acc, loss = evaluate_model(model, xv, yv, with_loss=True)
    assert (r.accuracy, r.val_loss) == (acc, loss) and 0 < acc < 1
    # the winner's test accuracies, at its own side (resized batch by batch) and at the proxy's
    for side in (None, 32):
        xt, yt = data.test_arrays(resolution=side)
        xt = np.asarray(xt)
        whole = evaluate_model(model, xt, yt)
        assert evaluate_batches(model, data.eval_batches("test", resolution=side)) == whole
        assert evaluate_batches(model, data.eval_batches("test", resolution=side, batch_size=7)) == whole
    float_model = nas.models.strip_fake_quant(model).eval()
    path = export_onnx(float_model, tmp_path / "m.onnx", resolution=data.resolution)
    xt, yt = data.test_arrays()
    whole = onnx_accuracy(path, np.asarray(xt), yt)
    assert onnx_accuracy_batches(path, data.eval_batches("test")) == whole
    assert onnx_accuracy_batches(path, data.eval_batches("test", batch_size=7)) == whole
    with torch.no_grad():
        pred = float_model(torch.from_numpy(np.asarray(xt))).argmax(1).numpy()
    assert abs(whole - float((pred == yt).mean())) <= 2 / len(yt)  # the same network, in onnxruntime

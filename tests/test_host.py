"""Real measurements on this host with onnxruntime (tiny ops, so they stay fast)."""

import json

import pytest

from nas.latency import _host as host
from nas.space import OpSpec


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    return tmp_path


OPS = [
    OpSpec("conv", 16, 16, 3, 16, kernel=3, stride=2, act="relu"),
    OpSpec("mbconv", 8, 8, 16, 16, hidden=48, kernel=3, stride=1, act="relu6", expand=True),
    OpSpec("mbconv", 8, 8, 16, 24, hidden=64, kernel=5, stride=2, se=16, act="hswish", expand=True),
    OpSpec("shuffle", 8, 8, 24, 48, hidden=24, kernel=3, stride=2, act="relu"),
    OpSpec("gap", 4, 4, 48, 48),
    OpSpec("linear", 1, 1, 48, 10),
]


def test_ops_are_timed_fp32_and_int8_and_cached(cache):
    todo = [(op, 32) for op in OPS] + [(op, 8) for op in OPS if op.kind != "gap"]
    got = host.measure_ops(todo)
    assert len(got) == len(todo)
    assert all(0 < ms < 100 for ms in got.values())
    saved = json.loads((host.cache_dir() / "table.json").read_text())
    assert set(saved) == set(got)
    calls = []
    got2 = host.measure_ops(todo, progress=lambda i, n: calls.append(i))
    assert got2 == got and calls == []  # everything came from the cache


def test_measuring_restores_the_callers_thread_count():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        host.measure_ops([(OPS[0], 32)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_end_to_end_measurement(tmp_path):
    import nas

    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace(resolution=64)
    f32 = host.measure_candidate(cand, False, tmp_path)
    i8 = host.measure_candidate(cand, True, tmp_path)
    assert 0 < f32 < 1000 and 0 < i8 < 1000


def test_corrupt_cache_is_a_clear_error(cache):
    from nas.errors import DeviceError

    host.cache_dir().mkdir(parents=True)
    (host.cache_dir() / "table.json").write_text("{not json")
    with pytest.raises(DeviceError, match="delete it"):
        host.measure_ops([(OPS[0], 32)])
    # valid JSON, but not milliseconds (the op and pair caches are read alike)
    for text in ('{"x": "fast"}', '{"x": null}', "[1, 2]"):
        (host.cache_dir() / "table.json").write_text(text)
        with pytest.raises(DeviceError, match="not milliseconds"):
            host.measure_ops([(OPS[0], 32)])


@pytest.mark.parametrize("bits", [32, 8])
def test_consecutive_ops_time_as_one_model(tmp_path, bits):
    # issue 28 item 3 times op pairs (benchmarks/int8_junctions.py): the pair must be one model
    # whose input is the first op's and output the second's, int8 without its own boundary Q/DQ
    a, b = OPS[1], OPS[2]
    run = host.op_runner([a, b], bits, tmp_path)
    (out,) = run()
    assert out.shape == (1, b.cout, *b.out_hw)
    pair = host.measure_op([a, b], bits, tmp_path)
    assert 0 < pair < 100
    if bits == 8:
        import onnx

        nodes = [n.op_type for n in onnx.load(str(tmp_path / "op.int8.onnx")).graph.node]
        assert nodes[0] != "QuantizeLinear" and nodes[-1] != "DequantizeLinear"

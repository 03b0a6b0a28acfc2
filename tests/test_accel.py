"""Accelerator choice: the CPU path runs through the device code here; CUDA tests run only where
torch sees a GPU (none in CI)."""

import numpy as np
import pytest
import torch
from conftest import TINY_PROXY
from typer.testing import CliRunner

import nas
from nas.cli import app
from nas.errors import DistillError, NasError
from nas.run import SearchConfig, resolve_run
from nas.train import describe_device, resolve_accelerator
from nas.train._proxy import _check_finite, evaluate_proxy
from nas.winner import DistillConfig

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_and_cpu_resolve_and_the_run_records_them(tmp_path):
    assert resolve_accelerator("cpu") == "cpu"
    assert resolve_accelerator("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NasError, match="choose one of auto, cpu, cuda"):
        resolve_accelerator("tpu")
    ctx = resolve_run(SearchConfig(trials=1, out=str(tmp_path), name="a", accelerator="cpu", proxy=dict(TINY_PROXY),
                                   proxy_kind="train"))
    assert ctx.proxy.device == "cpu" and ctx.meta.proxy_budget["device"] == "cpu" and ctx.meta.accelerator == "CPU"
    assert describe_device("cpu") == "CPU"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_clear_line(tmp_path):
    r = CliRunner().invoke(app, ["search", "--accelerator", "cuda", "--trials", "1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "sees no CUDA GPU" in r.output and "Traceback" not in r.output, r.output
    assert not any(tmp_path.iterdir())  # nothing written
    r = CliRunner().invoke(app, ["search", "--trials-per-gpu", "0", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--trials-per-gpu must be at least 1" in r.output
    with pytest.raises(DistillError, match="sees no CUDA GPU"):
        DistillConfig(accelerator="cuda").validate()


def test_batched_loss_check_names_the_first_bad_step():
    _check_finite([torch.tensor(1.0)] * 3, 3)
    with pytest.raises(FloatingPointError, match="step 11"):
        _check_finite([torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(float("inf"))], 13)


@cuda
def test_proxy_trains_on_the_gpu_without_host_synchronisation_in_fake_quant():
    from nas.models import apply_fake_quant, build_model

    ds = nas.load_dataset("builtin")
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224").replace_bits(8)
    model = apply_fake_quant(build_model(cand, 10, 1, resolution=28)).cuda().train()
    x = torch.randn(16, 1, 28, 28, device="cuda")
    model(x)  # first step initialises the activation ranges
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host read in the forward pass raises
    try:
        model(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    gpu = evaluate_proxy(cand, ds, seed=0, max_train_images=256, epochs=1, device="cuda")
    cpu = evaluate_proxy(cand, ds, seed=0, max_train_images=256, epochs=1, device="cpu")
    assert not gpu.failed and 0 < gpu.accuracy <= 1 and np.isfinite(gpu.val_loss)
    assert abs(gpu.accuracy - cpu.accuracy) < 0.1  # same recipe; kernels differ, not the result


@cuda
def test_a_cuda_out_of_memory_is_a_failed_trial_with_the_reason():
    ds = nas.load_dataset("builtin").at_resolution(224)
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_large_1.0_224")
    free, _ = torch.cuda.mem_get_info()
    blocker = torch.empty(int(free * 0.97), dtype=torch.uint8, device="cuda")  # leave too little
    try:
        r = evaluate_proxy(cand, ds, seed=0, max_train_images=512, batch_size=512, epochs=1, device="cuda")
    finally:
        del blocker
        torch.cuda.empty_cache()
    assert r.failed and "CUDA out of memory" in r.reason and "--trials-per-gpu" in r.reason


@cuda
def test_the_same_seed_gives_the_same_proxy_result_on_a_gpu():
    ds = nas.load_dataset("builtin")
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224")
    a, b = (evaluate_proxy(cand, ds, seed=3, max_train_images=512, epochs=1, device="cuda") for _ in range(2))
    # deterministic cuDNN and cuBLAS; pooling's backward may still differ in the last bits (nas.train._accel)
    assert abs(a.accuracy - b.accuracy) <= 2 / len(ds.x_val)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_cpu_training_leaves_the_cuda_settings_alone():
    was = torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()
    cand = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224")
    r = evaluate_proxy(cand, nas.load_dataset("builtin"), seed=0, max_train_images=64, epochs=1, device="cpu")
    assert not r.failed
    assert (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()) == was

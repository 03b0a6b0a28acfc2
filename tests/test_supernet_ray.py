"""The run's supernet trained on Ray (nas.supernet.train_on_ray): one Ray task with its progress
polled, reused once saved; a training killed with SIGKILL continues from its checkpoint and
ends with the weights of an uninterrupted one; data-parallel over 2 CPU workers on gloo (Ray
Train); a diverging training is one SupernetError and leaves no weights."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

import nas
from nas.errors import SupernetError
from nas.supernet import Supernet, SupernetBudget, load_supernet, read_training, train_on_ray, train_supernet

ROOT = Path(__file__).resolve().parents[1]
SPACE = "shufflenetv2"
BUDGET = SupernetBudget(epochs=1.0, max_train_images=256, batch_size=32, random_members=1, checkpoint_every=2)


@pytest.fixture(scope="module")
def tiny_data():
    return nas.data.load_dataset("builtin").subset(train=256, val=64, seed=0)


@pytest.fixture(scope="module")
def straight(tiny_data) -> str:
    """The digest of BUDGET's training run uninterrupted in this process (train_supernet is
    deterministic step for step)."""
    torch.manual_seed(0)
    net = Supernet(nas.load_space(SPACE), tiny_data.num_classes, tiny_data.in_channels)
    train_supernet(net, tiny_data, BUDGET, 0, threads=1)
    return net.digest()


def test_one_ray_task_trains_reports_progress_and_is_reused(tmp_path, tiny_data, straight, ray_session):
    space = nas.load_space(SPACE)
    seen = []
    net, record = train_on_ray(space, tiny_data, BUDGET, 0, tmp_path, threads=1,
                               progress=lambda step, total, seconds: seen.append((step, total, seconds)))
    assert record["training"]["steps"] == 8 and record["training"]["resumed_from"] == 0
    steps = [s for s, _, _ in seen]
    assert steps and steps == sorted(set(steps)) and steps[-1] == 8  # increasing, up to the last step
    assert all(total == 8 and seconds >= 0 for _, total, seconds in seen)
    assert net.digest() == record["digest"] == read_training(tmp_path)["digest"]
    assert load_supernet(tmp_path, space).digest() == record["digest"]
    folder = tmp_path / "supernet"
    assert sorted(p.name for p in folder.iterdir()) == ["training.json", "weights.pt"]  # no checkpoint left
    # the task trained what the same call in this process trains
    assert record["digest"] == straight
    # a second call loads it: no Ray task, no progress, the same weights
    mtime = (folder / "weights.pt").stat().st_mtime_ns
    seen.clear()
    again, record2 = train_on_ray(space, tiny_data, BUDGET, 0, tmp_path, threads=1,
                                  progress=lambda *a: seen.append(a))
    assert again.digest() == record["digest"] and record2 == record and seen == []
    assert (folder / "weights.pt").stat().st_mtime_ns == mtime


_KILLED_SCRIPT = """
import json, logging, sys
from pathlib import Path
import ray
import nas
from nas.supernet import SupernetBudget, train_on_ray

ray.init(num_cpus=1, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
data = nas.data.load_dataset("builtin").subset(train=256, val=64, seed=0)
budget = SupernetBudget(**json.loads(sys.argv[2]))
train_on_ray(nas.load_space("shufflenetv2"), data, budget, 0, Path(sys.argv[1]), threads=1)
"""


def _descendants(root: int) -> list[int]:
    """Every process below `root`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie whose parent is gone counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killed_training_resumes_from_its_checkpoint(tmp_path, tiny_data, straight, ray_session):
    """kill -9 of the process training (and of its Ray) mid-training; the next call continues from
    the checkpoint and ends with the weights of an uninterrupted training."""
    budget = BUDGET  # a checkpoint every 2 of its 8 steps
    script = tmp_path / "train.py"
    script.write_text(_KILLED_SCRIPT)
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(run), json.dumps(asdict(budget))], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = run / "supernet" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert proc.poll() is None, f"the training process ended early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        # the process, its Ray and Ray's workers: Ray puts each worker in a process group of its
        # own, so the group kill alone can leave the training worker writing checkpoints
        family = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    deadline = time.monotonic() + 30
    while True:  # every one of them gone: nothing writes the run folder any more
        alive = [pid for pid in family if _alive(pid)]
        try:
            os.killpg(proc.pid, 0)
            alive.append(proc.pid)
        except ProcessLookupError:
            pass
        if not alive:
            break
        assert time.monotonic() < deadline, f"processes of the killed training outlived it: {alive}"
        time.sleep(0.2)
    assert not (run / "supernet" / "weights.pt").exists()  # killed before the end
    stopped_at = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < stopped_at < 8

    net, record = train_on_ray(nas.load_space(SPACE), tiny_data, budget, 0, run, threads=1)
    assert record["training"]["resumed_from"] == stopped_at and record["training"]["steps"] == 8
    assert net.digest() == record["digest"] == straight
    assert not checkpoint.exists()


def _train_loss(net: Supernet, data) -> float:
    """Cross-entropy of the supernet's largest network on the training images (batch statistics)."""
    net = net.train()
    x = torch.from_numpy(data.normalize(np.asarray(data.x_train)))
    y = torch.from_numpy(np.asarray(data.y_train))
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(net(x, net.space.largest()), y))


@pytest.mark.slow  # about a minute here: Ray Train's start, 8 steps of two processes
def test_two_cpu_workers_data_parallel_on_gloo(tmp_path, tiny_data, ray_session):
    """Ray Train's TorchTrainer, 2 workers of 1 thread: both ranks end with the same weights (each
    rank's digest, written by rank 0), the result is finite, loadable, and learnt something.
    (Not equal to a one-process run of the global batch: batch norm's statistics are per rank.)"""
    space = nas.load_space(SPACE)
    budget = SupernetBudget(epochs=2.0, max_train_images=256, batch_size=32, random_members=1)
    seen = []
    net, record = train_on_ray(space, tiny_data, budget, 0, tmp_path, workers=2, threads=1,
                               progress=lambda *a: seen.append(a))
    assert record["training"]["steps"] == 8  # 250 images in global batches of 2 x 32, twice
    assert seen and seen[-1][:2] == (8, 8)
    ranks = json.loads((tmp_path / "supernet" / "ray" / "ranks.json").read_text())["digests"]
    assert len(ranks) == 2 and ranks[0] == ranks[1] == record["digest"] == net.digest()
    loaded = load_supernet(tmp_path, space)
    assert loaded.digest() == record["digest"]
    assert all(torch.isfinite(t).all() for t in loaded.state_dict().values())
    torch.manual_seed(0)
    fresh = Supernet(space, tiny_data.num_classes, tiny_data.in_channels)
    assert _train_loss(loaded, tiny_data) < _train_loss(fresh, tiny_data)


def test_diverging_training_is_one_error_and_leaves_no_weights(tmp_path, tiny_data, ray_session):
    budget = SupernetBudget(epochs=1.0, max_train_images=256, batch_size=32, random_members=1, lr=1e6)
    with pytest.raises(SupernetError, match="diverged.*non-finite supernet loss.*lower the supernet learning rate"):
        train_on_ray(nas.load_space(SPACE), tiny_data, budget, 0, tmp_path, threads=1)
    folder = tmp_path / "supernet"
    assert not (folder / "weights.pt").exists() and not (folder / "training.json").exists()
    assert not list(folder.glob("*.tmp"))
    assert read_training(tmp_path) is None


def test_more_than_ray_has_is_refused(tmp_path, tiny_data, ray_session):
    with pytest.raises(SupernetError, match="asks for 8 CPUs.*Ray has 2"):
        train_on_ray(nas.load_space(SPACE), tiny_data, BUDGET, 0, tmp_path, workers=2, threads=4)
    with pytest.raises(SupernetError, match="GPU"):
        train_on_ray(nas.load_space(SPACE), tiny_data, BUDGET, 0, tmp_path, device="cuda")


def test_worker_that_dies_is_one_error(tmp_path, tiny_data, ray_session):
    def _die(candidate) -> bool:  # a local function: Ray ships it by value
        os._exit(3)  # the Ray worker process ends here, as one killed for memory would

    with pytest.raises(SupernetError, match="Ray worker training the supernet died.*continue from its checkpoint"):
        train_on_ray(nas.load_space(SPACE), tiny_data, BUDGET, 0, tmp_path, threads=1, allow=_die)
    assert read_training(tmp_path) is None


@pytest.mark.slow  # Ray Train's start
def test_data_parallel_failure_is_one_error(tmp_path, tiny_data, ray_session):
    """A worker's error comes back through Ray Train's WorkerGroupError as the same one line."""
    budget = SupernetBudget(epochs=1.0, max_train_images=256, batch_size=32, random_members=1, lr=1e6)
    with pytest.raises(SupernetError, match="diverged.*non-finite supernet loss.*lower the supernet learning rate"):
        train_on_ray(nas.load_space(SPACE), tiny_data, budget, 0, tmp_path, workers=2, threads=1)
    assert read_training(tmp_path) is None

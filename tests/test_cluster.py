"""A real Ray cluster: a head started with `ray start --head` and a second node joining it, both
on this machine, and `nas search --ray-address` running trials on both."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nas.report import load_run
from nas.search import trial_attrs

RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
pytestmark = [pytest.mark.skipif(not os.path.exists(RAY), reason="the ray CLI is not installed"),
              pytest.mark.slow]  # a real two-node Ray cluster (ray start), in subprocesses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_session(marker: str) -> None:
    """Stop only this test's Ray processes (`ray stop` would stop every Ray on the machine)."""
    for _ in range(3):
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if marker.encode() in (d / "cmdline").read_bytes():
                        os.kill(int(d.name), signal.SIGKILL)
                except (OSError, ProcessLookupError):
                    pass
        time.sleep(0.5)


def test_search_runs_trials_on_both_nodes_of_a_ray_cluster(tmp_path):
    temp = tempfile.mkdtemp(prefix="hwrc")  # not tmp_path: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": f"{temp}/token",
           "RAY_USAGE_STATS_ENABLED": "0"}
    with open(f"{temp}/token", "w") as f:
        f.write(os.urandom(16).hex())
    port = _free_port()
    try:
        head = subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                               "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}/ray"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert head.returncode == 0, head.stderr[-2000:]
        addr = f"127.0.0.1:{port}"
        node = subprocess.run([RAY, "start", f"--address={addr}", "--node-ip-address=127.0.0.1", "--num-cpus=1"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert node.returncode == 0, node.stderr[-2000:]
        p = subprocess.run([sys.executable, "-m", "nas", "search", "--ray-address", addr, "--trials", "2",
                            "--workers", "2", "--proxy-images", "320", "--references", "0", "--no-distill",
                            "--proxy", "train", "--fidelity", "halving", "--eta", "2", "--rungs", "2",
                            "--out", str(tmp_path), "--name", "c"],
                           env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        study, _, _ = load_run(tmp_path / "c")
        # two trials on two workers of one CPU each, at once: one on each node
        nodes = {trial_attrs(t)["node"] for t in study.trials if t.user_attrs.get("status") == "evaluated"}
        assert len(nodes) == 2, nodes
        # halving on a cluster: checkpoints travel as bytes through Ray, the driver writes them
        promoted = [v for k, v in study.user_attrs.items() if k.startswith("rungs:")]
        assert len(promoted) == 1 and all(v[0]["status"] == "evaluated" for v in promoted)
    finally:
        _kill_session(temp)
        shutil.rmtree(temp, ignore_errors=True)

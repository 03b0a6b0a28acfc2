"""Nothing in a config, profile, space or checkpoint is executed; YAML is read safely."""

import pytest
import torch
import yaml

from nas.errors import DistillError, NasError, SearchError
from nas.latency import load_device
from nas.run import load_config
from nas.space import load_space
from nas.train import load_checkpoint

PAYLOAD = "!!python/object/apply:os.system ['touch {marker}']"


@pytest.mark.parametrize("loader", [load_space, load_device, load_config])
def test_yaml_tags_that_would_run_code_are_refused(tmp_path, loader):
    marker = tmp_path / "pwned"
    doc = tmp_path / "evil.yaml"
    doc.write_text(f"name: {PAYLOAD.format(marker=marker)}\nconfig: {PAYLOAD.format(marker=marker)}\n")
    with pytest.raises(NasError):
        loader(doc)
    assert not marker.exists()


def test_checkpoints_are_loaded_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.pt"
    torch.save({"key": "x", "state_dict": {}, "num_classes": 10, "in_channels": 3, "resolution": 32,
                "extra": Payload()}, path)
    with pytest.raises(DistillError):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_config_with_unknown_or_odd_fields_is_data_only(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"config": {"trials": "__import__('os').system('x')"}, "storage": "s",
                                   "study_name": "n"}))
    with pytest.raises(SearchError):
        load_config(cfg)


@pytest.mark.slow
def test_a_search_writes_only_inside_out(tmp_path):
    """Run from a clean working directory with a clean HOME: afterwards hwnas's files are all in
    --out (Ray keeps its session logs in its temp folder and its token in ~/.ray; matplotlib
    caches its font list)."""
    import os
    import subprocess
    import sys

    work, home, out = tmp_path / "cwd", tmp_path / "home", tmp_path / "out"
    for d in (work, home):
        d.mkdir()
    env = {**os.environ, "HOME": str(home), "HWNAS_CACHE": str(home / ".cache" / "hwnas")}
    p = subprocess.run([sys.executable, "-m", "nas", "search", "--trials", "1", "--proxy", "train",
                        "--proxy-images", "128", "--references", "0", "--no-distill", "--out", str(out), "--name", "r"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert list(work.iterdir()) == []
    # third-party caches only: Ray's auth token (~/.ray) and matplotlib's font list
    stray = [f for f in home.rglob("*") if f.is_file()
             and not f.relative_to(home).parts[0] == ".ray" and "matplotlib" not in f.parts]
    assert stray == []
    assert (out / "r" / "study.db").is_file() and {f.name for f in out.iterdir()} == {"r"}

"""nas.run._folder and nas._paths: the lock and atomic writes."""

import os

import pytest


def test_a_write_that_fails_half_way_leaves_the_previous_file(tmp_path, monkeypatch):
    import errno

    from nas._paths import atomic_write

    target = tmp_path / "trials.csv"
    atomic_write(target, "old content\n")
    real_fdopen = os.fdopen

    class FullDisk:  # the first bytes land, then the disk is full
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:5])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new content that does not fit\n" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]  # no temp file left behind

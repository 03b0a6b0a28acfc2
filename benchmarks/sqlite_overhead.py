"""Issue 5 (c): what the study's SQLite settings cost per trial.

ask + SearchSpace.suggest (mobilenetv3, ~60 parameters) + one user attribute + tell, random
sampler, 15 trials, median, with SQLite's default journal, with WAL + synchronous=NORMAL (what
nas.search._driver uses) and with synchronous=OFF.

    python benchmarks/sqlite_overhead.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def bench(path: Path, pragmas: list[str]) -> float:
    import optuna
    from sqlalchemy import event

    import nas

    space = nas.load_space("mobilenetv3")
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}})
    if pragmas:
        @event.listens_for(storage.engine, "connect")
        def _set(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            for p in pragmas:
                cur.execute(p)
            cur.close()
        storage.engine.dispose()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        trial = study.ask()
        cand = space.suggest(trial)
        trial.set_user_attr("key", cand.key)
        study.tell(trial, [0.5, 1.0])
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, pragmas) in enumerate([
                ("default journal", []),
                ("WAL + synchronous=NORMAL", ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"]),
                ("synchronous=OFF", ["PRAGMA synchronous=OFF"])]):
            print(f"{label}: {bench(Path(tmp) / f'{i}.db', pragmas):.1f} ms per ask+suggest+tell")


if __name__ == "__main__":
    main()

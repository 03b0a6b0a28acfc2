"""nas.run._config: SearchConfig validation and config.yaml (written and read in one place)."""

import pytest
from conftest import TINY_PROXY

from nas.errors import SearchError
from nas.run import SearchConfig


def config(tmp_path, **kw):
    base = dict(device="pixel7", space="mobilenetv3", trials=4, workers=2, data="builtin", out=str(tmp_path),
                name="run", references=1, proxy=dict(TINY_PROXY), seed=0)
    base.update(kw)
    return SearchConfig(**base)


@pytest.mark.parametrize("kw, msg", [({"trials": 0}, "--trials"), ({"workers": 0}, "--workers"),
                                     ({"sampler": "grid"}, "sampler"), ({"objectives": ("latency",)}, "objectives"),
                                     ({"latency_ms": -1.0}, "latency-ms"), ({"proxy": {"epoch": 1}}, "epoch"),
                                     ({"name": "../x"}, "name")])
def test_bad_configuration_is_a_clear_error(tmp_path, kw, msg):
    with pytest.raises(SearchError, match=msg):
        config(tmp_path, **kw).validate()


def test_a_resumed_run_keeps_the_proxy_budget_it_started_with(tmp_path):
    """config.yaml records the full budget; a later change of a default must not reach an old run."""
    from dataclasses import asdict

    import yaml

    from nas.run import load_config
    from nas.train import ProxyBudget

    old = asdict(ProxyBudget())
    old["batch_size"] = ProxyBudget().batch_size * 2  # as if the default had been another
    raw = {"config": SearchConfig(proxy={"epochs": 2.0}).to_dict(), "proxy_budget": old, "study_name": "r",
           "storage": "sqlite:///x.db", "latency_budget_ms": 3.0, "latency_budget_source": "given",
           "device_label": "pixel7", "device_provenance": "estimated", "device_source": "", "dataset": "builtin",
           "num_classes": 10}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    config, _ = load_config(tmp_path / "config.yaml")
    assert config.budget().batch_size == old["batch_size"]
    assert config.budget().epochs == 2.0  # the run's own overrides still win


def test_proxy_settings_are_type_checked():
    from nas.errors import SearchError

    SearchConfig(proxy={"epochs": 2, "lr": 0.05, "max_train_images": None, "batch_size": 16}).validate()
    for bad in ({"batch_size": "32"}, {"batch_size": 3.5}, {"lr": True}, {"epochs": None}):
        with pytest.raises(SearchError, match="proxy setting"):
            SearchConfig(proxy=bad).validate()
    for bad, flag in (({"max_train_images": 0}, "--proxy-images"), ({"epochs": 0.0}, "--proxy-epochs"),
                      ({"batch_size": -1}, "batch_size")):  # 0 images trained nothing and scored at chance
        with pytest.raises(SearchError, match=f"{flag} must be more than 0"):
            SearchConfig(proxy=bad).validate()


def test_the_storage_is_kept_relative_to_the_run_folder(tmp_path):
    from nas.run._config import storage_in_run, storage_on_disk

    run = tmp_path / "run"
    run.mkdir()
    inside = f"sqlite:///{run / 'study.db'}"
    assert storage_on_disk(inside, run) == "sqlite:///study.db"
    assert storage_in_run("sqlite:///study.db", tmp_path / "moved") == f"sqlite:///{(tmp_path / 'moved').resolve() / 'study.db'}"
    outside = f"sqlite:///{tmp_path / 'shared.db'}"
    assert storage_on_disk(outside, run) == outside == storage_in_run(outside, run)  # not the run's: as given
    for url in ("postgresql://user@db/hwnas", "sqlite:///:memory:"):
        assert storage_on_disk(url, run) == url == storage_in_run(url, run)

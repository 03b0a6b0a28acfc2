from typer.testing import CliRunner

import nas
from nas.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_version_and_help():
    r = run("--version")
    assert r.exit_code == 0 and nas.__version__ in r.output
    r = run("--help")
    assert r.exit_code == 0 and "spaces" in r.output


def test_spaces_lists_every_space():
    r = run("spaces")
    assert r.exit_code == 0
    for name in nas.space_names():
        assert name in r.output


def test_space_show():
    r = run("space", "show", "mobilenetv3")
    assert r.exit_code == 0, r.output
    assert "mobilenet_v3_small_1.0_224" in r.output and "skeleton large" in r.output


def test_unknown_space_is_one_line_exit_2():
    r = run("space", "show", "resnet")
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "valid: efficientnet_lite, fbnet, mobilenetv2, mobilenetv3, shufflenetv2" in lines[0]
    assert "Traceback" not in r.output


def test_candidate_describe_by_reference_and_key():
    r = run("candidate", "describe", "shufflenet_v2_x1.0_224")
    assert r.exit_code == 0, r.output
    assert "MACs 144.9M" in r.output and "params 2.279M" in r.output
    key = nas.load_space("mobilenetv2").reference("mobilenet_v2_0.5_160").key
    r = run("candidate", "describe", key)
    assert r.exit_code == 0 and key in r.output


def test_bad_key_is_one_line_with_position():
    r = run("candidate", "describe", "mobilenetv2:r224:w1:k4e1")
    assert r.exit_code == 2
    assert "position 21" in r.output and "Traceback" not in r.output
    r = run("candidate", "describe", "not_a_reference")
    assert r.exit_code == 2 and "neither" in r.output


import pytest  # noqa: E402


@pytest.mark.parametrize("args, msg", [
    (["search", "--trials", "0"], "--trials must be at least 1"),
    (["search", "--workers", "0"], "--workers must be at least 1"),
    (["search", "--sampler", "grid"], "unknown sampler"),
    (["search", "--objectives", "latency,acc"], "--objectives"),
    (["search", "--device", "nokia3310"], "nokia3310"),
    (["search", "--space", "resnet"], "resnet"),
    (["search", "--data", "/nonexistent/data.npz"], "/nonexistent/data.npz"),
    (["search", "--latency-ms", "0.001", "--out", "{tmp}"], "no candidate of mobilenetv3 meets 0.001 ms"),
    (["search", "--memory-kb", "400", "--out", "{tmp}"], "no candidate of mobilenetv3 meets --memory-kb 400: "
                                                          "the smallest peak memory"),
    (["search", "--size-kb", "300", "--out", "{tmp}"], "no candidate of mobilenetv3 meets --size-kb 300"),
    (["search", "--resume", "/nonexistent/run"], "not a run folder"),
    (["report", "/nonexistent/run"], "not a run folder"),
    (["distill", "/nonexistent/run"], "not a run folder"),
    (["distill", "{tmp}", "--pick", "fastest"], "unknown --pick rule"),
])
def test_search_commands_reject_bad_input_in_one_line(args, msg, tmp_path):
    r = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if not ln.startswith("latency budget")]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.output
    assert list(tmp_path.iterdir()) == []  # nothing written


def _main(argv, capsys):
    """The console-script entry point (what `nas` runs): (exit code, stdout, stderr)."""
    from nas.cli import run as main

    with pytest.raises(SystemExit) as info:
        main(argv)
    got = capsys.readouterr()
    return info.value.code, got.out, got.err


@pytest.mark.parametrize("argv, msg", [
    (["search", "--bogus"], "No such option: --bogus"),
    (["search", "--trials", "abc"], "Invalid value for '--trials'"),
    (["nosuchcommand"], "No such command"),
])
def test_usage_errors_are_one_line_exit_2(argv, msg, capsys):
    code, out, err = _main(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], err
    assert "╭" not in err and "Traceback" not in err


def test_help_has_no_type_placeholders_and_defines_the_pick_rules(capsys):
    code, out, _ = _main(["distill", "--help"], capsys)
    assert code == 0 and "<bool>" not in out
    text = " ".join(out.split())
    for rule in ("best", "knee (the point of the accuracy/latency front", "latency<=MS", "trial=N"):
        assert rule in text


def test_user_data_is_printed_verbatim_not_as_markup_or_emoji():
    r = run("latency", "--device", "pixel7", "--reference", "mobilenet_v3_small_1.0_224")
    assert r.exit_code == 0, r.output
    assert ":x:" in r.output and "\u274c" not in r.output  # op keys keep their ':x:' field
    assert "priced with 1000 classifier outputs" in r.output


def test_the_search_progress_line_fits_80_columns():
    from nas.cli._run import search_info
    from nas.search import SearchProgress

    p = SearchProgress(3, 40, 2, 7, 1, 0.657, "k", 100.0, 260.0)
    info = search_info(p)
    assert info == "~4 min left, best 0.657, 1 failed, 7 over budget"
    # what matters fits 80 columns beside the bar; the counts after it may be cut
    assert len(f"searching {'-' * 16} 3/40 trials ~4 min left, best 0.657, 1 failed") <= 80


def test_a_search_without_distillation_ends_with_the_command_that_trains_the_winner(tmp_path, ray_session):
    r = run("search", "--trials", "2", "--proxy-images", "128", "--references", "0", "--no-distill",
            "--out", str(tmp_path), "--name", "s")
    assert r.exit_code == 0, r.output
    assert "latency budget 3.45 ms for 10 classes" in r.output
    assert r.output.strip().splitlines()[-1].startswith(f"next: nas distill {tmp_path / 's'}")


def test_the_cli_defaults_are_the_config_dataclasses_defaults():
    """Single-sourced defaults: every option of `nas search` / `nas distill` named after a
    SearchConfig / DistillConfig / ProxyBudget field defaults to that field's default."""
    import typer

    from nas.run import SearchConfig
    from nas.train import ProxyBudget
    from nas.winner import DistillConfig

    command = typer.main.get_command(app)
    aliases = {"out_dir": "out", "out_name": "out", "images": "max_train_images"}
    checked = 0
    for cmd, sources in (("search", (SearchConfig, ProxyBudget)), ("distill", (DistillConfig,))):
        for p in command.commands[cmd].params:
            field = aliases.get(p.name, p.name)
            src = next((c for c in sources if field in getattr(c, "__dataclass_fields__", {})), None)
            if src is None:
                continue
            want = getattr(src, field)
            got = p.default
            if field == "objectives":
                want = ",".join(want)
            if field == "out" and cmd == "search":
                got, want = str(got), str(want)
            assert got == want, (cmd, p.name, got, want)
            checked += 1
    no_distill = next(p for p in command.commands["search"].params if p.name == "no_distill")
    assert no_distill.default is (not SearchConfig.distill)
    assert checked >= 30

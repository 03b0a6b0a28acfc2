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
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "valid: fbnet, mobilenetv2, mobilenetv3, shufflenetv2" in lines[0]
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


import pytest
from conftest import SPACES, sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
from nas.errors import CandidateError, CandidateSyntaxError
from nas.space import Block, format_number, make_divisible, pruned_channels


@pytest.mark.parametrize("space_name", SPACES)
def test_random_candidates_round_trip(space_name):
    for cand in sample(space_name, 50, seed=1):
        key = cand.key
        back = nas.parse_candidate(key)
        assert back == cand
        assert back.key == key
        assert hash(back) == hash(cand)


def test_references_round_trip(space):
    for name in space.references():
        ref = space.reference(name)
        assert nas.parse_candidate(ref.key) == ref


def test_key_is_readable():
    ref = nas.load_space("mobilenetv2").reference("mobilenet_v2_1.0_224")
    assert ref.key == ("mobilenetv2:r224:w1:k3e1/k3e6,k3e6/k3e6,k3e6,k3e6/k3e6,k3e6,k3e6,k3e6/"
                       "k3e6,k3e6,k3e6/k3e6,k3e6,k3e6/k3e6")
    small = nas.load_space("mobilenetv3").reference("mobilenet_v3_small_0.75_224")
    assert small.key.startswith("mobilenetv3.small:r224:w0.75:k3e1/k3e4.5,k3e3.67/")


def test_block_tokens():
    b = Block.parse("k5e6p0.625b4")
    assert (b.kind, b.kernel, b.expansion, b.groups, b.keep, b.bits) == ("mb", 5, 6.0, 1, 0.625, 4)
    assert b.token == "k5e6p0.625b4"
    assert Block.parse("k3e1g2b8").groups == 2
    assert Block.parse("skip").kind == "skip"
    assert Block.parse("xp0.5").kind == "xception"
    assert Block.parse("k7").kind == "shuffle"


def test_replace_bits():
    cand = sample("mobilenetv2", 1, seed=3)[0]
    q = cand.replace_bits(8)
    assert all(b.bits == 8 for b in q.blocks)
    assert [(b.op, b.keep) for b in q.blocks] == [(b.op, b.keep) for b in cand.blocks]
    assert q.replace_bits(32).key == cand.replace_bits(32).key
    assert nas.parse_candidate(q.key) == q


@pytest.mark.parametrize("key, position, reason", [
    ("", 0, "empty key"),
    ("Mobilenetv2:r224:w1:k3e1", 0, "search space name"),
    ("mobilenetv2:x224:w1:k3e1", 11, "resolution"),
    ("mobilenetv2:r0224:w1:k3e1", 13, "leading zero"),
    ("mobilenetv2:r224:w1.0:k3e1", 18, "canonical"),
    ("mobilenetv2:r224:w1:k4e1", 21, "must be odd"),
    ("mobilenetv2:r224:w1:k3e1/k3e6,,k3e6", 30, "empty block"),
    ("mobilenetv2:r224:w1:k3e1/k3e6b32", 29, "b32"),
    ("mobilenetv2:r224:w1:k3e1/k3e6p1", 29, "p1"),
    ("mobilenetv2:r224:w1:k3e1/k3e6p0.50", 30, "canonical"),
    ("mobilenetv2:r224:w1:k3e1/k3e6q", 29, "unexpected 'q'"),
    ("mobilenetv2:r224:w1:k3e1/q", 25, "expected an op"),
    ("mobilenetv2.default:r224:w1:k3e1", 11, "implied"),
    (" mobilenetv2:r224:w1:k3e1", 0, "white space"),
])
def test_syntax_errors_name_position_and_reason(key, position, reason):
    with pytest.raises(CandidateSyntaxError) as info:
        nas.parse_candidate(key)
    assert info.value.position == position, str(info.value)
    assert reason in info.value.reason


@pytest.mark.parametrize("key, reason", [
    ("mobilenetv2:r224:w1:k3e1", "stages"),
    ("mobilenetv2.large:r224:w1:k3e1", "no skeleton"),
    ("shufflenetv2:r224:w0.7:k3/k3,k3,k3,k3/k3,k3", "width"),
    ("mobilenetv2:r224:w1:k3e1p0.5/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6",
     "no hidden channels"),
    ("mobilenetv2:r224:w1:k3e1b5/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6", "bit width"),
    ("mobilenetv2:r224:w1:k3e1/k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6", "blocks, allowed"),
    ("mobilenetv2:r224:w1:k3e1/skip,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6", "skip"),
    ("mobilenetv2:r224:w1:k3/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6,k3e6/k3e6", "not a mbconv op"),
])
def test_semantic_errors(key, reason):
    with pytest.raises(CandidateError) as info:
        nas.parse_candidate(key)
    assert not isinstance(info.value, CandidateSyntaxError)
    assert reason in str(info.value)


def test_unknown_space_in_key():
    with pytest.raises(nas.errors.UnknownSpaceError, match="valid: efficientnet_lite, fbnet"):
        nas.parse_candidate("resnet:r224:w1:k3e1")


_KEYS = [c.key for name in SPACES for c in sample(name, 5, seed=7)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KEYS), st.integers(0, 10_000), st.text(alphabet="kepbgx0123456789.,/:rw", max_size=3))
def test_mutated_keys_parse_or_raise_typed_error(key, pos, insert):
    """Any edit of a valid key either parses to exactly that string or raises a typed error
    (CandidateError, or UnknownSpaceError when the edit hits the space name)."""
    pos %= len(key) + 1
    mutated = key[:pos] + insert + key[pos + len(insert):]
    try:
        cand = nas.parse_candidate(mutated)
    except nas.errors.UnknownSpaceError:
        return
    except CandidateError as exc:
        if isinstance(exc, CandidateSyntaxError):
            assert 0 <= exc.position <= len(mutated)
        return
    assert cand.key == mutated


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_typed_errors(text):
    try:
        nas.parse_candidate(text)
    except (CandidateError, nas.errors.UnknownSpaceError):
        pass


def test_make_divisible_matches_torchvision_rule():
    assert make_divisible(32 * 0.35) == 16  # 11.2 -> 8 would lose more than 10%
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(1280 * 1.4) == 1792
    for v in [x / 7 for x in range(8, 4000)]:
        r = make_divisible(v)
        assert r % 8 == 0 and r >= 8 and r >= 0.9 * v


def test_pruned_channels():
    assert pruned_channels(96, 1.0) == 96
    assert pruned_channels(96, 0.5) == 48
    assert pruned_channels(58, 1.0) == 58  # ShuffleNet branch widths are not multiples of 8
    for h in range(8, 600, 4):
        for keep in (0.5, 0.625, 0.75, 0.875):
            p = pruned_channels(h, keep)
            assert p <= h and p % 8 == 0 or p == h


def test_format_number():
    assert format_number(1.0) == "1" and format_number(0.35) == "0.35" and format_number(2.5) == "2.5"

"""The weight-sharing supernet: the candidate's network from the supernet is exactly the
standalone one (forward and extract agree, for random candidates of every supported space),
gradients reach the shared weights, training is resumable step for step, and scoring runs."""

import random

import numpy as np
import pytest
import torch

import nas
from nas.errors import SupernetError
from nas.models import build_model
from nas.space import SearchSpace
from nas.supernet import (
    SUPPORTED_SPACES,
    Supernet,
    SupernetBudget,
    load_supernet,
    read_training,
    save_supernet,
    score_candidate,
    train_supernet,
)


def _members(space: SearchSpace, n: int, seed: int):
    rng = random.Random(seed)
    cands = [space.sample(rng) for _ in range(n)]
    cands += [space.largest(), space.smallest(), cands[0].replace_bits(32)]
    cands += [space.reference(r) for r in space.references()[:1]]
    return cands


@pytest.mark.parametrize("name", SUPPORTED_SPACES)
def test_forward_equals_extracted_network(name):
    """For random candidates (float and mixed bits), the largest, the smallest and a reference:
    supernet(x, c) == extract(c)(x) in eval mode, after the shared weights and statistics have
    been moved by training steps of other candidates; extract is build_model's network."""
    torch.manual_seed(0)
    space = nas.load_space(name)
    net = Supernet(space, num_classes=10, in_channels=3)
    cands = _members(space, 5, seed=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    net.train()
    for c in cands[:3]:  # move weights, batch-norm and activation-range statistics off their init
        x = torch.randn(4, 3, 24, 24)
        opt.zero_grad()
        net(x, c).logsumexp(1).mean().backward()
        opt.step()
    net.eval()
    for side, c in zip([24, 16, 32, 24, 20, 28, 24, 32], cands):
        x = torch.randn(3, 3, side, side)
        extracted = net.extract(c, side).eval()
        reference = build_model(c, 10, 3, resolution=side)
        if c.is_quantized:
            nas.models.apply_fake_quant(reference)
        assert list(extracted.state_dict()) == list(reference.state_dict()), c.key
        with torch.no_grad():
            a, b = net(x, c), extracted(x)
        assert a.shape == (3, 10)
        assert torch.equal(a, b), (c.key, (a - b).abs().max().item())


def test_gradients_reach_only_the_used_slices():
    space = nas.load_space("mobilenetv3")
    net = Supernet(space, 10, 1)
    c = space.smallest()
    net.train()
    net(torch.randn(2, 1, 16, 16), c).sum().backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    used = [n for n, g in grads.items() if g is not None and g.abs().sum() > 0]
    assert used and len(used) < len(grads)  # the large skeleton's slots are untouched
    stem = next(n for n in used if "small__pre0" in n and n.endswith("weight") and grads[n].ndim == 4)
    g = grads[stem]
    assert g[:8].abs().sum() > 0 and g[8:].abs().sum() == 0  # width 0.5: the first 8 of 16 filters


def test_sort_channels_keeps_the_largest_network():
    torch.manual_seed(0)
    space = nas.load_space("mobilenetv2")
    net = Supernet(space, 10, 3)
    big = space.largest()
    x = torch.randn(4, 3, 24, 24)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    net(x, big).sum().backward()
    opt.step()
    net.eval()
    before = net(x, big)
    small_before = net(x, space.smallest())
    net.sort_channels(opt)
    assert torch.allclose(before, net(x, big), rtol=1e-4, atol=1e-4)  # summed in another order
    assert not torch.allclose(small_before, net(x, space.smallest()))  # the small one got other channels


def test_unsupported_space_refused():
    import dataclasses

    space = dataclasses.replace(nas.load_space("mobilenetv2"), family="transformer")
    with pytest.raises(SupernetError, match="no supernet yet.*--proxy train"):
        Supernet(space, 10, 3)


def test_candidate_of_another_space_refused():
    net = Supernet(nas.load_space("shufflenetv2"), 10, 3)
    with pytest.raises(SupernetError, match="not a candidate of space"):
        net.extract(nas.load_space("mobilenetv2").largest(), 32)


@pytest.fixture(scope="module")
def tiny_data():
    ds = nas.data.load_dataset("builtin")
    return ds.subset(train=256, val=64, seed=0)


def test_training_resumes_step_for_step(tmp_path, tiny_data):
    """A training stopped after its checkpoint and started again ends with exactly the weights
    of one that ran through (the members and data of a step follow from the seed and step)."""
    space = nas.load_space("shufflenetv2")
    budget = SupernetBudget(epochs=1.0, max_train_images=256, batch_size=32, checkpoint_every=3,
                            random_members=1, quant_fraction=0.5)

    def fresh():
        torch.manual_seed(0)
        return Supernet(space, tiny_data.num_classes, tiny_data.in_channels)

    straight = fresh()
    r1 = train_supernet(straight, tiny_data, budget, seed=3, threads=1)
    assert r1.steps == 8 and np.isfinite(r1.loss)

    class Stop(Exception):
        pass

    def stop_at_4(step, total, seconds):
        if step == 4:
            raise Stop

    ck = tmp_path / "checkpoint.pt"
    with pytest.raises(Stop):
        train_supernet(fresh(), tiny_data, budget, seed=3, checkpoint=ck, progress=stop_at_4, threads=1)
    resumed = fresh()
    r2 = train_supernet(resumed, tiny_data, budget, seed=3, checkpoint=ck, threads=1)
    assert r2.resumed_from == 3 and r2.steps == 8
    assert resumed.digest() == straight.digest()
    # another budget's checkpoint is refused, not silently continued
    with pytest.raises(SupernetError, match="another supernet training"):
        train_supernet(fresh(), tiny_data, SupernetBudget(epochs=2.0, max_train_images=256, batch_size=32),
                       seed=3, checkpoint=ck, threads=1)
    # the run folder round trip, and scoring from inherited weights
    save_supernet(tmp_path, resumed, r2, budget, seed=3)
    assert read_training(tmp_path)["digest"] == resumed.digest()
    again = load_supernet(tmp_path, space)
    assert again.digest() == resumed.digest()
    c = space.sample(random.Random(5))
    r = score_candidate(again, c, tiny_data, seed=0, bn_batches=2, threads=1)
    assert not r.failed and 0 <= r.accuracy <= 1 and r.train_seconds == 0


def test_damaged_supernet_file_is_one_line(tmp_path):
    space = nas.load_space("mobilenetv2")
    (tmp_path / "supernet").mkdir()
    (tmp_path / "supernet" / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(SupernetError, match="damaged"):
        load_supernet(tmp_path, space)
    with pytest.raises(SupernetError, match="no trained supernet"):
        load_supernet(tmp_path / "nothing", space)

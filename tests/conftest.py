import random

import pytest
import torch

import nas

torch.set_num_threads(1)

SPACES = nas.space_names()


def sample(space_name: str, n: int, seed: int = 0):
    space = nas.load_space(space_name)
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.fixture(params=SPACES)
def space(request):
    return nas.load_space(request.param)

"""Seeds drawn from a position (seed, epoch, batch, process...), not from an RNG's history: a resumed
run draws exactly the numbers an uninterrupted one draws."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


def mixed_seed(*parts: int) -> int:
    """One 63-bit seed from integers (``mixed_seed(seed, epoch, batch, rank, purpose)``)."""
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + int(part)) % (2**63 - 1)
    return seed


def seeded_generator(device, *parts: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`mixed_seed` of ``parts``."""
    return torch.Generator(device=device).manual_seed(mixed_seed(*parts))


class EpochSeededSampler(Sampler):
    """A permutation drawn from (seed, epoch): the same order in a resumed run as in an uninterrupted one."""

    def __init__(self, length: int, seed: int):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())

    def __len__(self):
        return self.length

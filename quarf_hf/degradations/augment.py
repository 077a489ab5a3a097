"""``RandomDegradation``: a training-time augmentation mixing corruption kinds within a batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..models.checks import InputError, InputTypeError, check_probability, short_repr
from .registry import (
    check_corruptions, check_generator, check_images, check_reference_size, check_severity, check_values, degrade,
)


class RandomDegradation:
    """Each image independently, with probability ``p``, gets a random corruption kind from
    ``names`` (default: all of ``CORRUPTIONS``) at a random severity from ``severities``.

    ``severities``: a ``(low, high)`` tuple is an inclusive range; a list (or any other sequence,
    or a single int) is the explicit set to draw from. Images are grouped by their drawn
    (kind, severity) and each group is degraded in one batched call. Deterministic given a
    ``generator`` on the images' device.

    ``reference_size``: passed to :func:`~quarf_hf.degradations.degrade` (the size rule of
    :mod:`quarf_hf.degradations.registry`; ``None`` keeps the tables' pixel values, 224 scales
    them with the batch's ``min(H, W)``).
    """

    def __init__(self, names: Sequence[str] | None = None, severities=(1, 5), p: float = 0.5,
                 reference_size: int | None = None):
        self.names = check_corruptions(names, "names")  # None: all; duplicates dropped, order kept

        if isinstance(severities, tuple) and len(severities) == 2:
            low, high = severities
            check_severity(low)
            check_severity(high)
            if low > high:
                raise InputError(f"severities: expected a (low, high) range with low <= high, found {severities}")
            levels = list(range(low, high + 1))
        elif isinstance(severities, int) and not isinstance(severities, bool):
            check_severity(severities)
            levels = [severities]
        elif isinstance(severities, Sequence) and not isinstance(severities, str):
            levels = list(severities)
            if not levels:
                raise InputError("severities: expected at least one severity, found an empty sequence")
            for s in levels:
                check_severity(s)
        else:
            raise InputTypeError(f"severities: expected a (low, high) tuple or a list of ints in 1..5, found {short_repr(severities)}")
        self.severities = sorted(set(levels))

        self.p = check_probability("p", p)
        self.reference_size = check_reference_size(reference_size)

    def __repr__(self) -> str:
        return (f"RandomDegradation(names={self.names}, severities={self.severities}, p={self.p}, "
                f"reference_size={self.reference_size})")

    def _draw(self, b: int, device, generator):
        # all draws up front, so the result depends only on the generator state
        apply = torch.rand(b, generator=generator, device=device) < self.p
        kinds = torch.randint(len(self.names), (b,), generator=generator, device=device)
        levels = torch.randint(len(self.severities), (b,), generator=generator, device=device)
        return torch.where(apply, kinds * len(self.severities) + levels, -1)

    def _decode(self, combo: int) -> tuple[str, int]:
        return self.names[combo // len(self.severities)], self.severities[combo % len(self.severities)]

    def plan(self, batch_size: int, generator: torch.Generator | None = None, device="cpu") -> list:
        """What ``__call__`` with the same generator state would do to each image of a batch:
        ``(name, severity)`` or ``None`` (left clean). For logging and tests."""
        return [None if c < 0 else self._decode(c) for c in self._draw(batch_size, device, generator).tolist()]

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_images(images)
        check_generator(generator, images)
        check_values(images)
        b = images.shape[0]
        if b == 0:
            return images.clone()
        combo = self._draw(b, images.device, generator)
        out = images.clone()
        # one batched call per distinct (kind, severity) present: at most min(B, kinds * levels)
        for c in torch.unique(combo).tolist():
            if c < 0:
                continue
            idx = (combo == c).nonzero().squeeze(1)
            name, severity = self._decode(c)
            out[idx] = degrade(images[idx], name, severity, generator, reference_size=self.reference_size)
        return out

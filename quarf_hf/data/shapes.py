"""quarf-shapes: a synthetic benchmark where classes differ in fine texture AND in shape.

Clean, the texture (period 2-6 px) alone tells the classes apart, so a small receptive field is
enough; once noise or blur wipes the texture out, only the outline is left, which needs a wider
receptive field. Colours are drawn from one shared range for every class, so colour is no cue.
Every item is generated on the fly from a ``torch.Generator`` seeded by ``(seed, index)``.
"""

from __future__ import annotations

import math

import torch

from ..models.checks import InputError, check_int, short_repr
from ..tasks import get_task
from .segmentation import parse_size

CLASS_NAMES = (
    "background",           # low-contrast pixel noise on a smooth gradient
    "striped-disc",         # vertical stripes
    "striped-square",       # horizontal stripes
    "checkered-triangle",   # checkerboard
    "dotted-ellipse",       # dots on a grid
    "hatched-diamond",      # diagonal stripes
)
DEFAULT_DEGRADATIONS = ("gaussian_noise", "defocus_blur", "jpeg_compression")


def _seed(seed: int, index: int) -> int:
    # splitmix-style mixing: neighbouring (seed, index) pairs get unrelated streams
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % (1 << 64)
    z = ((z ^ (z >> 31)) * 0x94D049BB133111EB) % (1 << 64)
    return (z ^ (z >> 29)) % (1 << 63)


def _uniform(generator, low: float, high: float, n: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _shape_mask(cls: int, dy, dx, radius: float, angle: float) -> torch.Tensor:
    """Pixels inside the class's outline; ``dy``/``dx`` are offsets from the shape's centre."""
    if cls == 1:
        return dx * dx + dy * dy <= radius * radius
    if cls == 2:
        side = radius * 0.85
        return (dx.abs() <= side) & (dy.abs() <= side)
    if cls == 3:
        inside = torch.ones_like(dx, dtype=torch.bool)
        for k in range(3):  # equilateral triangle: three half-planes at 120 degrees
            theta = angle + 2 * math.pi * k / 3
            inside &= dx * math.cos(theta) + dy * math.sin(theta) <= radius * 0.5
        return inside
    if cls == 4:
        u = dx * math.cos(angle) + dy * math.sin(angle)
        v = -dx * math.sin(angle) + dy * math.cos(angle)
        return (u / radius) ** 2 + (v / (radius * 0.5)) ** 2 <= 1
    return dx.abs() + dy.abs() <= radius * 1.1


def _texture(cls: int, y, x, generator) -> torch.Tensor:
    """The class's texture in [-1, 1], with a random period (2-6 px) and phase."""
    phase = _uniform(generator, 0, 12, 2)
    if cls == 1:
        return torch.sin(2 * math.pi * (x + phase[0]) / _uniform(generator, 3, 6).item())
    if cls == 2:
        return torch.sin(2 * math.pi * (y + phase[0]) / _uniform(generator, 3, 6).item())
    if cls == 3:
        cell = _uniform(generator, 2, 3).item()
        return torch.sign(torch.sin(math.pi * (x + phase[0]) / cell) * torch.sin(math.pi * (y + phase[1]) / cell))
    if cls == 4:
        period = _uniform(generator, 4, 6).item()
        u = torch.remainder(x + phase[0], period) - period / 2
        v = torch.remainder(y + phase[1], period) - period / 2
        return torch.where(u * u + v * v <= (period / 3.2) ** 2, 1.0, -1.0)
    return torch.sin(2 * math.pi * ((x + y) / math.sqrt(2) + phase[0]) / _uniform(generator, 3, 6).item())


def render_scene(generator: torch.Generator, size: tuple[int, int], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One scene: ``(image (3, H, W) float32 in [0, 1], labels (H, W) int64)``."""
    h, w = size
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    # background: a colour from the shared range, a gentle ramp, faint pixel noise
    base = _uniform(generator, 0.25, 0.75, 3)
    direction = _uniform(generator, 0, 2 * math.pi).item()
    ramp = (x * math.cos(direction) + y * math.sin(direction)) / max(h, w)
    noise = torch.rand(h, w, generator=generator) * 2 - 1
    image = base[:, None, None] + 0.1 * ramp + 0.05 * noise
    labels = torch.zeros(h, w, dtype=torch.int64)
    short = min(h, w)
    for _ in range(int(torch.randint(3, 9, (1,), generator=generator))):
        cls = int(torch.randint(1, num_classes, (1,), generator=generator))
        cy, cx = _uniform(generator, 0, h).item(), _uniform(generator, 0, w).item()
        radius = _uniform(generator, 0.1, 0.25).item() * short
        angle = _uniform(generator, 0, 2 * math.pi).item()
        mask = _shape_mask(cls, y - cy, x - cx, radius, angle)
        colour = _uniform(generator, 0.25, 0.75, 3)
        amplitude = _uniform(generator, 0.15, 0.25).item()
        painted = colour[:, None, None] + amplitude * _texture(cls, y, x, generator)
        # later shapes cover earlier ones: overlaps are part of the scene
        image = torch.where(mask, painted, image)
        labels[mask] = cls
    return image.clamp_(0, 1), labels


class QuarfShapes(torch.utils.data.Dataset):
    """``num_samples`` procedurally generated scenes; item ``i`` depends only on ``(seed, i)``.

    A task of classes (``task="segmentation"``): ``{"pixel_values": (3, H, W) float32 in [0, 1],
    "labels": (H, W) int64}``. A task of images (``task="restoration"``): ``{"pixel_values": degraded
    (3, H, W), "labels": clean (3, H, W)}``, the degradation kind drawn from ``degradations`` and the
    severity from ``severities`` (inclusive range) with the same per-item generator, after the scene.
    """

    def __init__(self, num_samples: int, size=64, seed: int = 0, task: str = "segmentation", num_classes: int = 5,
                 degradations=None, severities=(1, 5)):
        check_int("num_samples", num_samples)
        self.size = parse_size(size)
        self.degraded = not get_task(task).classes  # items are (degraded, clean) image pairs
        check_int("num_classes", num_classes, 2, len(CLASS_NAMES),
                  expected=f"an integer from 2 to {len(CLASS_NAMES)} (background included)")
        check_int("seed", seed, minimum=None)
        severities = tuple(severities)
        if len(severities) != 2 or not 1 <= severities[0] <= severities[1] <= 5:
            raise InputError(f"severities: expected (low, high) with 1 <= low <= high <= 5, found {short_repr(severities)}")
        self.num_samples, self.seed, self.task, self.num_classes = num_samples, seed, task, num_classes
        self.severities = severities
        self.degradations = tuple(DEFAULT_DEGRADATIONS if degradations is None else degradations)
        if self.degraded:
            # the degradation package is only needed (and imported) for this task
            from ..degradations import CORRUPTIONS

            unknown = [name for name in self.degradations if name not in CORRUPTIONS]
            if unknown or not self.degradations:
                raise InputError(f"degradations: unknown {unknown or 'empty list'}; expected names from {sorted(CORRUPTIONS)}")
        self.num_labels = num_classes
        self.id2label = dict(enumerate(CLASS_NAMES[:num_classes]))

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index: {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        generator = torch.Generator().manual_seed(_seed(self.seed, index))
        image, labels = render_scene(generator, self.size, self.num_classes)
        if not self.degraded:
            return {"pixel_values": image, "labels": labels}
        from ..degradations import degrade

        name = self.degradations[int(torch.randint(len(self.degradations), (1,), generator=generator))]
        severity = int(torch.randint(self.severities[0], self.severities[1] + 1, (1,), generator=generator))
        degraded = degrade(image[None], name, severity, generator=generator)[0]
        return {"pixel_values": degraded.float().clamp(0, 1), "labels": image}

    def __repr__(self) -> str:
        return f"QuarfShapes({self.num_samples} samples, size={self.size}, seed={self.seed}, task={self.task!r})"

"""Shared tensor helpers for the corruption modules (all batched, float32, no Python loops
over images)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pick(table: tuple, severity: int):
    """The parameter for ``severity`` (1..5) from a 5-entry table."""
    return table[severity - 1]


def rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) noise on ``x``'s device; ``generator=None`` uses torch's global RNG."""
    return torch.rand(shape, generator=generator, device=x.device, dtype=torch.float32)


def randn(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=x.device, dtype=torch.float32)


def conv_same(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of ``x`` (B, C, H, W) with one 2-D ``kernel`` (kh, kw).

    Replicate padding (not reflect) so tiny images work with any kernel size.
    """
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    flat = F.pad(x.reshape(b * c, 1, h, w), pad, mode="replicate")
    return F.conv2d(flat, kernel[None, None].to(x)).reshape(b, c, h, w)


def conv_per_image(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve image i of ``x`` (B, C, H, W) with its own kernel ``kernels[i]`` (B, k, k).

    One grouped convolution over the B*C channels: per-image kernels without a batch loop.
    """
    b, c, h, w = x.shape
    k = kernels.shape[-1]
    pad = (k // 2, k - 1 - k // 2, k // 2, k - 1 - k // 2)
    flat = F.pad(x.reshape(1, b * c, h, w), pad, mode="replicate")
    weight = kernels.to(x).repeat_interleave(c, dim=0)[:, None]  # (B*C, 1, k, k)
    return F.conv2d(flat, weight, groups=b * c).reshape(b, c, h, w)


def gaussian_kernel1d(sigma: float, device) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur: two 1-D passes are far cheaper than one 2-D kernel."""
    k = gaussian_kernel1d(sigma, x.device)
    return conv_same(conv_same(x, k[None, :]), k[:, None])


def disk_kernel(radius: float, device) -> torch.Tensor:
    """Antialiased flat disk (the point-spread function of an out-of-focus lens), sum 1."""
    r = int(math.ceil(radius))
    t = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    dist = torch.sqrt(t[:, None] ** 2 + t[None, :] ** 2)
    k = (radius + 0.5 - dist).clamp(0.0, 1.0)  # one-pixel soft edge
    return k / k.sum()


def line_kernels(length: float, angles: torch.Tensor, width: float = 1.0) -> torch.Tensor:
    """One antialiased line segment per angle (radians), centred: shape (B, k, k), each with
    peak-normalised rows (values in [0, 1]); callers normalise as they need."""
    k = int(math.ceil(length)) | 1  # odd size so the line is centred
    t = torch.arange(k, device=angles.device, dtype=torch.float32) - k // 2
    yy, xx = t[:, None], t[None, :]
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    along = xx * cos + yy * sin
    across = -xx * sin + yy * cos
    weight = (width - across.abs()).clamp(0.0, 1.0) * (length / 2 + 0.5 - along.abs()).clamp(0.0, 1.0)
    return weight


def fractal_noise(b: int, h: int, w: int, x: torch.Tensor, generator, decay: float = 0.6) -> torch.Tensor:
    """Smooth random field (B, 1, H, W) in [0, 1]: octaves of upsampled uniform noise, each finer
    octave weaker by ``decay`` (a cheap stand-in for ImageNet-C's plasma fractal)."""
    field = torch.zeros(b, 1, h, w, device=x.device, dtype=torch.float32)
    amplitude, cells = 1.0, 2
    while cells <= max(h, w) // 2 and cells <= 64:
        coarse = rand((b, 1, cells, cells), x, generator)
        field += amplitude * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        amplitude *= decay
        cells *= 2
    lo = field.amin(dim=(2, 3), keepdim=True)
    hi = field.amax(dim=(2, 3), keepdim=True)
    return (field - lo) / (hi - lo).clamp_min(1e-6)


def sparse_points(b: int, h: int, w: int, density: float, x: torch.Tensor, generator) -> torch.Tensor:
    """(B, 1, H, W) map of 1s at random points, each pixel with probability ``density``, plus one
    point per image at a random place, so that small images are never left unchanged."""
    points = (rand((b, 1, h, w), x, generator) < density).float()
    forced = (rand((b,), x, generator) * (h * w)).long().clamp_max(h * w - 1)
    points.view(b, h * w)[torch.arange(b, device=x.device), forced] = 1.0
    return points

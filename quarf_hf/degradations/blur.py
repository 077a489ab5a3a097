"""Optical and camera-motion blur, all as convolutions (separable where possible)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._ops import conv_per_image, conv_same, disk_kernel, gaussian_blur as _gaussian, line_kernels, pick, rand


def defocus_blur(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Out-of-focus blur: convolution with an antialiased flat disk, then a slight Gaussian
    (real lenses do not have perfectly sharp disk edges). Deterministic.

    severity 1..5 -> disk radius 1.5, 2.5, 3.5, 5, 7 pixels, then sigma 0.5 px; both times ``scale``.
    """
    radius = pick((1.5, 2.5, 3.5, 5.0, 7.0), severity) * scale
    return _gaussian(conv_same(x, disk_kernel(radius, x.device)), 0.5 * scale)


def gaussian_blur(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Gaussian blur. Deterministic.

    severity 1..5 -> sigma 1, 1.5, 2.5, 3.5, 5 pixels, times ``scale``.
    """
    return _gaussian(x, pick((1.0, 1.5, 2.5, 3.5, 5.0), severity) * scale)


def motion_blur(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Linear camera-motion blur along a random direction drawn per image.

    severity 1..5 -> blur length 5, 9, 13, 19, 27 pixels, times ``scale``.
    """
    length = pick((5.0, 9.0, 13.0, 19.0, 27.0), severity) * scale
    angles = rand((x.shape[0],), x, generator) * math.pi
    kernels = line_kernels(length, angles)
    kernels = kernels / kernels.sum(dim=(1, 2), keepdim=True)
    return conv_per_image(x, kernels)


def zoom_blur(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Zoom blur (the camera moves towards the scene during exposure): the mean of the image and
    centre crops of it zoomed by 1 + step, 1 + 2*step, ... up to the maximum. Deterministic.
    The zooms are fractions of the image, so the blur already grows with the image size: no
    ``scale`` (see the size rule in :mod:`.registry`).

    severity 1..5 -> maximum zoom 1.06, 1.11, 1.16, 1.21, 1.26 (step 0.01, 0.01, 0.02, 0.02, 0.03).
    """
    top, step = pick(((1.06, 0.01), (1.11, 0.01), (1.16, 0.02), (1.21, 0.02), (1.26, 0.03)), severity)
    zooms = torch.arange(1.0 + step, top + 1e-6, step).tolist()
    b = x.shape[0]
    acc = x.clone()
    # a loop over a handful of zoom factors, each a batched resample of the whole batch
    for z in zooms:
        theta = torch.tensor([[1.0 / z, 0.0, 0.0], [0.0, 1.0 / z, 0.0]], device=x.device).expand(b, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        acc += F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return acc / (len(zooms) + 1)

"""Weather and lighting: haze, rain streaks, raindrops on the lens, low light.
Each image in a batch gets its own random fog field, rain pattern or drop layout."""

from __future__ import annotations

import math

import torch

from ._ops import (
    conv_per_image, conv_same, disk_kernel, fractal_noise, gaussian_blur, line_kernels, pick, rand, randn, sparse_points,
)


def fog(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Haze by the atmospheric scattering model I = J t + A (1 - t), transmission
    t = exp(-beta d), with a random smooth fractal "depth" d in [0.5, 1.5] per image and a greyish
    airlight A = 0.85.

    severity 1..5 -> scattering beta 0.2, 0.4, 0.7, 1.0, 1.5. The depth field's cells are fractions
    of the image (2 to 64 across), so it needs no ``scale`` (see the size rule in :mod:`.registry`).
    """
    beta = pick((0.2, 0.4, 0.7, 1.0, 1.5), severity)
    b, _, h, w = x.shape
    depth = 0.5 + fractal_noise(b, h, w, x, generator)
    t = torch.exp(-beta * depth)
    return x * t + 0.85 * (1.0 - t)


def rain(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Rain streaks: sparse random drops smeared along one slanted direction per image (within 20
    degrees of vertical), lightly blurred and screen-blended onto a slightly darkened image (at least one streak per image).

    severity 1..5 -> (drop density per pixel, streak length px, streak opacity)
    (0.002, 8, 0.5), (0.004, 12, 0.6), (0.007, 16, 0.7), (0.010, 20, 0.8), (0.015, 26, 0.9).
    With ``scale``, the streak length, its 1-px width and 0.5-px blur are times ``scale`` and the
    density is divided by ``scale ** 2`` (the same number of streaks per image).
    """
    density, length, opacity = pick(
        ((0.002, 8, 0.5), (0.004, 12, 0.6), (0.007, 16, 0.7), (0.010, 20, 0.8), (0.015, 26, 0.9)), severity
    )
    density, length = density / scale**2, length * scale
    b, _, h, w = x.shape
    drops = sparse_points(b, h, w, density, x, generator) * (0.6 + 0.4 * rand((b, 1, h, w), x, generator))
    angles = math.pi / 2 + (rand((b,), x, generator) - 0.5) * math.radians(40)
    streaks = conv_per_image(drops, line_kernels(length, angles, width=scale)).clamp(0.0, 1.0)
    streaks = gaussian_blur(streaks, 0.5 * scale) * opacity
    darkened = x * (1.0 - 0.1 * opacity)  # overcast light during rain
    return 1.0 - (1.0 - darkened) * (1.0 - streaks)


def raindrops(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Water drops on the lens or windscreen: random round drops (two sizes) through which the
    scene is seen blurred and slightly brightened, with soft edges (at least two drops per image).

    severity 1..5 -> (drops per 10k pixels, drop radius px, blur sigma inside the drop)
    (3, 4, 2), (5, 5, 3), (8, 6, 4), (12, 7, 5), (18, 8, 6).
    With ``scale``, the radius, the blur sigmas (inside the drop and of its 1-px soft edge) are times
    ``scale`` and the number per pixel is divided by ``scale ** 2`` (the same drops per image).
    """
    per_10k, radius, sigma = pick(((3.0, 4.0, 2.0), (5.0, 5.0, 3.0), (8.0, 6.0, 4.0), (12.0, 7.0, 5.0), (18.0, 8.0, 6.0)), severity)
    per_10k, radius, sigma = per_10k / scale**2, radius * scale, sigma * scale
    b, _, h, w = x.shape
    mask = torch.zeros(b, 1, h, w, device=x.device)
    # two drop sizes; a loop over sizes, not over images
    for r, share in ((radius, 0.6), (radius * 1.6, 0.4)):
        centres = sparse_points(b, h, w, share * per_10k / 1e4, x, generator)
        disk = disk_kernel(r, x.device)
        mask = mask + conv_same(centres, disk / disk.max())
    mask = gaussian_blur(mask.clamp(0.0, 1.0), 1.0 * scale)
    seen = (gaussian_blur(x, sigma) * 1.08 + 0.04).clamp(0.0, 1.0)
    return x * (1.0 - mask) + seen * mask


def low_light(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Under-exposure with sensor noise: gain * x ** gamma, then heteroscedastic
    (Poisson-Gaussian) noise with variance shot * signal + read ** 2.

    severity 1..5 -> (gain, gamma, shot, read)
    (0.7, 1.1, 0.004, 0.01), (0.5, 1.3, 0.006, 0.015), (0.35, 1.5, 0.008, 0.02),
    (0.22, 1.7, 0.010, 0.025), (0.12, 2.0, 0.012, 0.03).
    """
    gain, gamma, shot, read = pick(
        ((0.7, 1.1, 0.004, 0.01), (0.5, 1.3, 0.006, 0.015), (0.35, 1.5, 0.008, 0.02),
         (0.22, 1.7, 0.010, 0.025), (0.12, 2.0, 0.012, 0.03)),
        severity,
    )
    dark = gain * x.clamp(0, 1) ** gamma
    std = torch.sqrt(shot * dark + read**2)
    return dark + std * randn(x.shape, x, generator)

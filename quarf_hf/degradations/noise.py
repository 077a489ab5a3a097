"""Sensor and transmission noise. Every image in a batch draws its own noise."""

from __future__ import annotations

import torch

from ._ops import pick, rand, randn


def gaussian_noise(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Additive white Gaussian noise, independent per pixel and channel.

    severity 1..5 -> standard deviation 0.08, 0.12, 0.18, 0.26, 0.38 (ImageNet-C values).
    """
    sigma = pick((0.08, 0.12, 0.18, 0.26, 0.38), severity)
    return x + sigma * randn(x.shape, x, generator)


def shot_noise(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Poisson (photon-counting) noise: the value is a photon count at ``photons`` full scale.

    severity 1..5 -> photons at full scale 60, 25, 12, 5, 3 (ImageNet-C values; fewer is noisier).
    """
    photons = pick((60.0, 25.0, 12.0, 5.0, 3.0), severity)
    return torch.poisson(x.clamp(0, 1) * photons, generator=generator) / photons


def impulse_noise(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Salt-and-pepper noise: a fraction of the values, per channel, set to 0 or 1.

    severity 1..5 -> fraction replaced 0.03, 0.06, 0.09, 0.17, 0.27 (ImageNet-C values).
    """
    amount = pick((0.03, 0.06, 0.09, 0.17, 0.27), severity)
    u = rand(x.shape, x, generator)
    salt = rand(x.shape, x, generator) < 0.5
    return torch.where(u < amount, salt.to(x.dtype), x)


def speckle_noise(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Multiplicative Gaussian noise (x + x * n), as in radar or ultrasound images.

    severity 1..5 -> standard deviation of n 0.15, 0.20, 0.35, 0.45, 0.60 (ImageNet-C values).
    """
    sigma = pick((0.15, 0.20, 0.35, 0.45, 0.60), severity)
    return x + x * sigma * randn(x.shape, x, generator)

"""The corruption registry and ``degrade``, the one entry point that validates input."""

from __future__ import annotations

from typing import Callable

import torch

from ..models.input_checks import check_pixel_range, check_pixel_values

from .blur import defocus_blur, gaussian_blur, motion_blur, zoom_blur
from .digital import brightness, contrast, jpeg_compression, pixelate, saturate
from .noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from .weather import fog, low_light, rain, raindrops

Corruption = Callable[[torch.Tensor, int, "torch.Generator | None"], torch.Tensor]

# name -> function(images float32 (B,3,H,W) in [0,1], severity 1..5, generator) -> unclipped result.
# Order: noise, blur, digital, weather (the gallery rows follow it).
CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "defocus_blur": defocus_blur,
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "jpeg_compression": jpeg_compression,
    "pixelate": pixelate,
    "contrast": contrast,
    "brightness": brightness,
    "saturate": saturate,
    "fog": fog,
    "rain": rain,
    "raindrops": raindrops,
    "low_light": low_light,
}

# Kinds whose output depends on the random generator (the others are deterministic functions).
STOCHASTIC = frozenset(
    {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "motion_blur", "fog", "rain", "raindrops", "low_light"}
)

SEVERITIES = (1, 2, 3, 4, 5)


def check_name(name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str naming a corruption, found {type(name).__name__}")
    if name not in CORRUPTIONS:
        raise ValueError(f"name: unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")


def check_severity(severity) -> None:
    # bool is an int subclass but True/False as a severity is a bug in the caller
    if isinstance(severity, bool) or not isinstance(severity, int):
        raise TypeError(f"severity: expected an int in 1..5, found {type(severity).__name__} {severity!r}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity: expected an int in 1..5, found {severity}")


def check_images(images) -> None:
    """The structural checks of a batch: a float (B, 3, H, W) tensor (no pass over the data)."""
    check_pixel_values(images, name="images")


def check_values(images: torch.Tensor) -> None:
    """The value checks (a pass over the data), after the cheap structural ones."""
    check_pixel_range(images, name="images", hint=" (normalised input?)")


def check_generator(generator, images: torch.Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, found {type(generator).__name__}")
    if generator.device.type != images.device.type:
        raise ValueError(
            f"generator: expected a generator on the images' device type {images.device.type!r}, "
            f"found one on {generator.device.type!r}"
        )


def degrade(images: torch.Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1 mild .. 5 strong) to a batch.

    ``images``: (B, 3, H, W) float tensor in [0, 1], any float dtype and device. Work is done in
    float32; the result has the input's shape, dtype and device, values in [0, 1]. Random kinds
    draw independent noise per image from ``generator`` (a ``torch.Generator`` on the images'
    device; ``None`` uses torch's global RNG), so a seeded generator gives identical output.
    """
    check_name(name)
    check_severity(severity)
    check_images(images)
    check_generator(generator, images)
    check_values(images)
    if images.numel() == 0:
        return images.clone()
    out = CORRUPTIONS[name](images.float(), severity, generator)
    return out.clamp(0.0, 1.0).to(images.dtype)

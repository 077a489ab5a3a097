"""The corruption registry and ``degrade``, the one entry point that validates input.

**The size rule.** The parameters of the kinds come from ImageNet-C, tuned for images of about
224 pixels. Given a ``reference_size`` R (pixels), an image of H x W pixels is degraded with
``scale = min(H, W) / R``: every length in pixels (blur sigma, disk radius, motion length,
pixelate block, rain streak length and width, raindrop radius, the small smoothing sigmas) is
multiplied by ``scale`` and every density per pixel (rain streaks, raindrops) divided by
``scale ** 2``, so an image twice as large gets the same degradation drawn twice as large.
``reference_size=None`` (the default) means ``scale = 1``: the pixel values of the tables,
whatever the image size, as before the rule; ``reference_size=224`` gives exactly those values on
224-pixel images. The kinds that scale are :data:`SPATIAL`; the others have no size in pixels:
the noises, contrast, brightness, saturation and low light act per pixel, JPEG's 8x8 blocks belong
to the codec, and zoom blur and fog are already drawn in fractions of the image.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models.checks import InputError, InputTypeError, check_int, short_repr
from ..models.input_checks import check_pixel_range, check_pixel_values, value_checks

from .blur import defocus_blur, gaussian_blur, motion_blur, zoom_blur
from .digital import brightness, contrast, jpeg_compression, pixelate, saturate
from .noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from .weather import fog, low_light, rain, raindrops

Corruption = Callable[[torch.Tensor, int, "torch.Generator | None"], torch.Tensor]

# name -> function(images float32 (B,3,H,W) in [0,1], severity 1..5, generator) -> unclipped result;
# the SPATIAL kinds also take ``scale`` (the size rule in the module doc).
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

# Kinds with a size in pixels: they take ``scale`` (the size rule in the module doc).
SPATIAL = frozenset({"defocus_blur", "gaussian_blur", "motion_blur", "pixelate", "rain", "raindrops"})

SEVERITIES = (1, 2, 3, 4, 5)


# The checks of corruption names and severities: every entry point (degrade, RandomDegradation,
# the gallery, evaluate_model, the training config, the evaluate and predict commands) uses
# these, with its own argument name in the messages.


def check_name(name, argument: str = "name") -> None:
    """One corruption name: a str that ``CORRUPTIONS`` knows."""
    if not isinstance(name, str):
        raise InputTypeError(f"{argument}: expected a str naming a corruption, found {type(name).__name__}")
    if name not in CORRUPTIONS:
        raise InputError(f"{argument}: unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")


def check_severity(severity, argument: str = "severity") -> None:
    """One severity: an int from 1 to 5."""
    check_int(argument, severity, 1, 5)  # refuses True/False too: a bool severity is a bug in the caller


def check_corruptions(names, argument: str = "corruptions", *, allow_empty: bool = False) -> list[str]:
    """``None`` or ``"all"`` -> every corruption (registry order); a name or a sequence of names ->
    those names, checked, duplicates dropped, order kept."""
    if names is None or (isinstance(names, str) and names == "all"):
        return list(CORRUPTIONS)
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise InputTypeError(f"{argument}: expected 'all', a corruption name or a list of names, found {short_repr(names)}") from None
    if not names and not allow_empty:
        raise InputError(f"{argument}: expected at least one corruption name, found an empty sequence")
    for name in names:
        check_name(name, argument)
    return list(dict.fromkeys(names))


def check_severities(severities, argument: str = "severities", *, allow_empty: bool = False) -> list[int]:
    """A severity or a sequence of severities -> the sorted distinct severities, each checked."""
    if isinstance(severities, int) and not isinstance(severities, bool):
        severities = [severities]
    if isinstance(severities, str) or not hasattr(severities, "__iter__"):
        raise InputTypeError(f"{argument}: expected a list of ints in 1..5, found {short_repr(severities)}")
    severities = list(severities)
    if not severities and not allow_empty:
        raise InputError(f"{argument}: expected at least one severity from 1 to 5, found none")
    for severity in severities:
        check_severity(severity, argument)
    return sorted(set(severities))


def check_degradation(corruption, severity, *, default_severity: int = 3,
                      arguments: tuple[str, str] = ("corruption", "severity")) -> tuple[str | None, int | None]:
    """An optional (corruption, severity) pair: ``(None, None)`` for none, else the checked pair,
    ``default_severity`` when only the corruption is given. ``arguments`` name the two in messages."""
    corruption_argument, severity_argument = arguments
    if severity is not None:
        check_severity(severity, severity_argument)
    if corruption is None:
        if severity is not None:
            raise InputError(f"{severity_argument}: only meaningful with {corruption_argument}")
        return None, None
    check_name(corruption, corruption_argument)
    return corruption, default_severity if severity is None else severity


def parse_corruptions(text: str, argument: str = "--corruptions") -> list[str]:
    """Command-line text: ``"all"`` (every corruption, sorted by name) or ``"a,b"``."""
    if str(text).strip().lower() == "all":
        return sorted(CORRUPTIONS)
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    if not names:
        raise InputError(f"{argument}: expected 'all' or a comma-separated list, found {short_repr(text)}")
    return check_corruptions(names, argument)


def parse_severities(text: str, argument: str = "--severities") -> list[int]:
    """Command-line text: ``"1-5"``, ``"1,3,5"``, ``"3"`` or a mix (``"1-2,5"``) -> sorted distinct severities."""
    values: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low > high:
                    raise ValueError
                values.extend(range(low, high + 1))
            else:
                values.append(int(part))
    except ValueError:
        raise InputError(f"{argument}: expected '1-5', '1,3,5' or '3', found {short_repr(text)}") from None
    return check_severities(values, argument)


def check_images(images) -> None:
    """The structural checks of a batch: a float (B, 3, H, W) tensor (no pass over the data)."""
    check_pixel_values(images, name="images")


def check_values(images: torch.Tensor) -> None:
    """The value checks (a pass over the data, where ``value_checks()`` says), after the cheap structural ones."""
    if value_checks():
        check_pixel_range(images, name="images")


def check_generator(generator, images: torch.Tensor) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise InputTypeError(f"generator: expected a torch.Generator or None, found {type(generator).__name__}")
    if generator.device.type != images.device.type:
        raise InputError(
            f"generator: expected a generator on the images' device type {images.device.type!r}, "
            f"found one on {generator.device.type!r}"
        )


def check_reference_size(reference_size, argument: str = "reference_size") -> int | None:
    """``None`` (no size rule) or a positive int: the image size, in pixels, at which the tables'
    pixel values apply unchanged (the size rule in the module doc)."""
    if reference_size is None:
        return None
    return check_int(argument, reference_size,
                     expected="None (no scaling) or a positive int in pixels (224: ImageNet-C's size)")


def spatial_scale(height: int, width: int, reference_size: int | None) -> float:
    """``min(height, width) / reference_size``, or 1.0 when ``reference_size`` is None."""
    return 1.0 if reference_size is None else min(height, width) / reference_size


def degrade(images: torch.Tensor, name: str, severity: int, generator: torch.Generator | None = None, *,
            reference_size: int | None = None) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1 mild .. 5 strong) to a batch.

    ``images``: (B, 3, H, W) float tensor in [0, 1], any float dtype and device. Work is done in
    float32; the result has the input's shape, dtype and device, values in [0, 1]. Random kinds
    draw independent noise per image from ``generator`` (a ``torch.Generator`` on the images'
    device; ``None`` uses torch's global RNG), so a seeded generator gives identical output.
    ``reference_size``: the size rule of the module doc (``None``: the tables' pixel values as
    they are; 224: ImageNet-C's values at 224 pixels, scaled with ``min(H, W)`` elsewhere).
    """
    check_name(name)
    check_severity(severity)
    check_reference_size(reference_size)
    check_images(images)
    check_generator(generator, images)
    check_values(images)
    if images.numel() == 0:
        return images.clone()
    if name in SPATIAL:
        scale = spatial_scale(images.shape[-2], images.shape[-1], reference_size)
        out = CORRUPTIONS[name](images.float(), severity, generator, scale=scale)
    else:
        out = CORRUPTIONS[name](images.float(), severity, generator)
    return out.clamp(0.0, 1.0).to(images.dtype)

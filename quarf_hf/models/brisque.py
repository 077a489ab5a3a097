"""Batched BRISQUE features in torch, matching OpenCV's ``QualityBRISQUE_computeFeatures``.

``BrisqueFeatures()(pixel_values)`` maps RGB or grayscale images ``(B, 3 | 1, H, W)`` with values
in [0, 1] to the 36 BRISQUE features (Mittal et al., 2012) of each image, in OpenCV's order and
with OpenCV's definitions (opencv-contrib ``modules/quality/src/qualitybrisque.cpp``), so that an
SVR trained on OpenCV's features can be fed these. Features 0-17 come from the full-size
image, 18-35 the same from the half-size one; within a scale:

* 0-1: AGGD fit of the MSCN map: shape, and the mean of the left and right variances
  (OpenCV fits an asymmetric GGD here too, not the paper's symmetric one);
* 2-17: for the products of each MSCN pixel with its right, lower, lower-right and
  upper-right neighbour: AGGD shape, mean, left variance, right variance.

How OpenCV computes them, and how this module does the same for a whole batch at once:

* OpenCV receives an 8-bit image: the input is quantised to 8 bits (``round(255 x)``), turned
  to gray with OpenCV's fixed-point ``BGR2GRAY`` weights and scaled by ``float32(1 / 255)``.
* MSCN: ``(I - mu) / (sqrt(E[I^2] - mu^2) + 1/255)`` with a 7x7 Gaussian window, sigma 7/6,
  replicated borders, all in float32. The blur uses OpenCV's own float32 arithmetic: its row
  filter accumulates ``fma(k[i], x[i], sum)`` for i = 0..6, its column filter starts from
  ``k[3] * centre`` and adds ``fma(k[i], up + down, sum)`` for i = 2, 1, 0. (``torch.add(x, y,
  alpha=k)`` is a fused multiply-add in PyTorch's vectorised CPU kernels and on CUDA; a check
  of the CPU at construction warns where it is not.) This matters: in an exactly flat window
  the true MSCN is 0, but OpenCV's rounding leaves there 0, a NaN (negative variance: NaN
  pixels drop out of every fit, here they are 0) or a residue near 1e-6 that counts as a
  sample. Images with flat areas (JPEG blocks, clipped skies) move by several percent with
  these counts; reproducing the rounding makes the full-scale MSCN map equal to OpenCV's.
* The half-size image is ``cv::resize(W // 2, H // 2, INTER_CUBIC)`` (a = -0.75, OpenCV's
  pixel-centre mapping and float32 weights, replicated borders), from four-tap row gathers.
* AGGD fit: OpenCV scans shapes 0.2, 0.201, ... < 10 and keeps the first local minimum of
  ``|r(shape) - r_hat|``. ``r`` is increasing, so that is the grid point nearest ``r_hat``; it
  is found by counting the grid ratios below ``r_hat`` (a ``searchsorted`` that graph capture and
  ONNX accept), for all images and maps at once, and the gamma terms are looked up per grid point.
  Products with a neighbour outside the image are 0 and count in the number of samples, as in
  OpenCV.

Remaining differences from OpenCV, and why:

* OpenCV's filters compute the last ``W mod 8`` columns (8: the AVX2 vector width of the
  OpenCV wheels) with scalar code that rounds differently (no fused multiply-add); those
  columns match to float32 rounding, not bit for bit, and their flat windows may differ.
* Half size: OpenCV's resize (Intel IPP) rounds in ways that cannot be reproduced; in
  particular it does not return a flat region's own value in about a third of the pixels, and
  then leaves rounding residue in flat windows. The resize here keeps flat regions exactly
  (it is written as ``S1 + sum_k w_k (S_k - S1)``), so those windows behave as OpenCV's do
  where its resize was exact.
* Measured (tests/test_brisque.py images): median relative differences per feature <= 1e-5,
  correlations >= 0.9999. Largest single differences: up to 4% on JPEG quality 10 (half-scale
  features, and full-scale ones when W is not a multiple of 8); elsewhere full-scale features
  within 1e-4 and half-scale ones within 1e-3, except AGGD means near 0 (2% of a value ~1e-3).
* Sums run in float32 along rows and float64 across rows (OpenCV: all double): relative
  differences near 1e-8, which the AGGD mean (a difference of two close sigmas) can magnify.
* Degenerate inputs (a constant image, or any map without negative or without positive
  values) give NaN variances and means, and shape 9.999, exactly as OpenCV's 0/0 does.

Input: ``(B, 1 | 3, H, W)`` floating tensor, RGB order, values in [0, 1] (up to rounding:
``input_checks.ROUNDING``), finite, ``H, W >= MIN_SIZE`` (14: the half-size image must
still hold the 7x7 window; OpenCV itself accepts smaller images and returns NaN or noise).
bfloat16 cannot hold 8-bit levels exactly (some are off by one). Computation is float32 (OpenCV's
working type) with float64 fits, on the input's device; the output is ``(B, 36)`` in the input's
dtype, without autograd (8-bit quantisation and a grid search have no useful gradient). No
weights and no state-dict entries. The check of the values is the only host synchronisation, and
follows :func:`input_checks.value_checks` (skipped while compiling or exporting, or switched off); the arithmetic
check runs once, at construction. No op breaks a ``torch.compile`` graph, and ``torch.export``
and ONNX export work (batch size dynamic). Compiled or exported code may round differently
(no fused multiply-add): that only moves the features of images with exactly flat areas.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import nn

from .input_checks import check_pixel_range, check_pixel_values, value_checks

FEATURE_DIM = 36
# Both sides of the half-size image must hold the 7x7 Gaussian window.
MIN_SIZE = 14

# OpenCV's COLOR_BGR2GRAY on 8-bit images: gray = (9798 R + 19235 G + 3735 B + 2^14) >> 15.
_GRAY_WEIGHTS_U8 = (9798.0, 19235.0, 3735.0)
_GRAY_SHIFT_U8 = 32768.0
# 1/255 rounded to float32, as OpenCV uses it (convertTo scale, sigma offset). As a Python
# float it is exact, so the op rounds x * c or x + c once, whatever precision it works in.
_INV_255 = torch.tensor(1 / 255, dtype=torch.float32).item()

_WINDOW_SIZE = 7
_WINDOW_SIGMA = 7.0 / 6.0
_CUBIC_A = -0.75  # OpenCV's INTER_CUBIC kernel parameter
# Neighbour offsets (row, column) of the paired products: right, down, down-right, up-right.
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def _gaussian_taps() -> list[float]:
    """OpenCV's getGaussianKernel(7, 7/6, CV_32F): computed in double, normalised, float32."""
    half = (_WINDOW_SIZE - 1) / 2
    x = torch.arange(_WINDOW_SIZE, dtype=torch.float64) - half
    values = torch.exp(-(x**2) / (2 * _WINDOW_SIGMA**2))
    return (values / values.sum()).float().tolist()


_GAUSSIAN_TAPS = _gaussian_taps()


@functools.lru_cache(maxsize=1)
def _shape_tables() -> tuple[torch.Tensor, ...]:
    """The AGGD shapes OpenCV tries, their ratio r(g) = G(2/g)^2 / (G(1/g) G(3/g)) and the
    log-gamma terms lgamma(1/g), lgamma(2/g), lgamma(3/g) of each, float64 CPU tensors (9800,).

    OpenCV steps ``g`` from 0.2 by 0.001 while ``g < 10``, adding in double precision; the
    grid is accumulated the same way so the chosen shapes are the same doubles. The log-gamma
    terms are looked up instead of computed per image (ONNX has no lgamma).
    """
    shapes, ratios = [], []
    g = 0.2
    while g < 10:
        shapes.append(g)
        ratios.append(math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)))
        g += 0.001
    # An explicit device: meta-device initialisation (from_pretrained) must not empty the tables.
    shape = torch.tensor(shapes, dtype=torch.float64, device="cpu")
    ratio = torch.tensor(ratios, dtype=torch.float64, device="cpu")
    return shape, ratio, torch.lgamma(1 / shape), torch.lgamma(2 / shape), torch.lgamma(3 / shape)


def _add_is_fused(device: torch.device) -> bool:
    """Whether torch.add(a, b, alpha=k) rounds once, like a fused multiply-add, on ``device``.

    With a = -1, b = 1 + 2^-23, k = 1 - 2^-23: b * k = 1 - 2^-46 rounds to 1 in float32, so a
    separate multiply and add gives 0 and a fused one -2^-46. 37 elements: vector body and tail.
    """
    a = torch.full((37,), -1.0, device=device)
    b = torch.full((37,), 1 + 2**-23, device=device)
    return bool((torch.add(a, b, alpha=1 - 2**-23) == -(2**-46)).all())




class BrisqueFeatures(nn.Module):
    r"""
    The 36 BRISQUE features of each image in a batch, as OpenCV computes them, in batched torch.
    See the module docstring for their definitions and the remaining differences from OpenCV.
    The module takes no arguments and has no parameters and no state-dict entries. To feed
    QuARF, use :func:`quarf_hf.build_quality_extractor` ``("brisque")``, which standardises them.

    ``forward(pixel_values)``:

    Args:
        pixel_values (`torch.Tensor` of shape `(batch, 1 or 3, height, width)`):
            Floats in [0, 1] (RGB or grey), at least 14x14 pixels.

    Returns:
        `torch.Tensor` of shape `(batch, 36)`, in the input's dtype (no gradient).

    Example:

    ```python
    >>> import torch
    >>> from quarf_hf import BrisqueFeatures
    >>> features = BrisqueFeatures()(torch.rand(2, 3, 64, 64))
    >>> features.shape
    torch.Size([2, 36])
    ```
    """

    feature_dim = FEATURE_DIM

    def __init__(self) -> None:
        super().__init__()
        # Once here, not per call: a probe in forward would be a host sync that breaks graph capture.
        # CUDA's add is fused (as OpenCV's filter); the CPU's depends on the build.
        if not _add_is_fused(torch.device("cpu")):
            warnings.warn(
                "BrisqueFeatures: torch.add(alpha=...) is not a fused multiply-add on cpu; "
                "features of images with flat areas will differ from OpenCV's by up to a few percent",
                stacklevel=2,
            )
        # The float64 tables stay out of the buffers, so that a model-wide .half() cannot round them.
        self._shape_tables = _shape_tables()

    @torch.no_grad()  # 8-bit quantisation and a grid search: there is no useful gradient
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        check_pixel_values(pixel_values, channels=(1, 3), min_size=MIN_SIZE, min_batch=1)
        if value_checks(self):  # a host sync
            check_pixel_range(pixel_values)
        tables = [table.to(pixel_values.device) for table in self._shape_tables]
        gray = _opencv_gray(pixel_values)
        half = _half_size_cubic(gray)
        sums = torch.stack([_scale_sums(gray), _scale_sums(half)], dim=1)  # (B, 2, 5, 6)
        features = _aggd_features(sums, *tables)
        return features.to(pixel_values.dtype)


def _opencv_gray(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, H, W) float32 gray image as OpenCV's BRISQUE sees an 8-bit image: BGR2GRAY in
    fixed point, then convertTo(CV_32F, 1/255)."""
    channels = pixel_values.unbind(1)
    if len(channels) == 1:
        return _to_level(channels[0]) * _INV_255
    gray = sum(_to_level(channel) * weight for channel, weight in zip(channels, _GRAY_WEIGHTS_U8))  # R, G, B
    return torch.floor((gray + _GRAY_SHIFT_U8 / 2) / _GRAY_SHIFT_U8) * _INV_255  # integers < 2^24: exact


def _to_level(channel: torch.Tensor) -> torch.Tensor:
    """The 8-bit value OpenCV would receive: round(255 x), saturated, float32."""
    return torch.round((channel * 255).float()).clamp(0, 255)


def _cubic_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices (dst, 4) and float32 weights (dst, 4) of OpenCV's INTER_CUBIC on one axis."""
    scale = 1.0 / (dst / src)  # OpenCV inverts dst / src
    pos = ((torch.arange(dst, device=device, dtype=torch.float64) + 0.5) * scale - 0.5).float()
    start = torch.floor(pos)
    t = pos - start
    a = _CUBIC_A
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    w3 = 1 - w0 - w1 - w2
    index = (start.long()[:, None] + torch.arange(-1, 3, device=device)).clamp(0, src - 1)
    return index, torch.stack([w0, w1, w2, w3], dim=1)


def _resize_rows(image: torch.Tensor, size: int) -> torch.Tensor:
    """Cubic resize of dim 1 of (B, H, W) to ``size`` rows, as S1 + sum_{k != 1} w_k (S_k - S1)
    (= sum_k w_k S_k) so that flat regions keep their value exactly. Whole rows are gathered."""
    index, weights = _cubic_taps(image.shape[1], size, image.device)
    second = image.index_select(1, index[:, 1])
    out = second
    for k in (0, 2, 3):
        out = torch.addcmul(out, image.index_select(1, index[:, k]) - second, weights[:, k].view(1, size, 1))
    return out


def _half_size_cubic(gray: torch.Tensor) -> torch.Tensor:
    """cv::resize(gray, (W // 2, H // 2), INTER_CUBIC) of a (B, H, W) batch."""
    height, width = gray.shape[-2:]
    rows_resized = _resize_rows(gray, height // 2).transpose(1, 2).contiguous()
    return _resize_rows(rows_resized, width // 2).transpose(1, 2).contiguous()


def _replicate(image: torch.Tensor, dim: int, pad: int) -> torch.Tensor:
    """``image`` with ``pad`` copies of its first and last slices along ``dim`` (BORDER_REPLICATE)."""
    first, last = image.narrow(dim, 0, 1), image.narrow(dim, image.shape[dim] - 1, 1)
    sizes = list(image.shape)
    sizes[dim] = pad
    return torch.cat([first.expand(sizes), image, last.expand(sizes)], dim=dim)


def _gaussian_blur(image: torch.Tensor) -> torch.Tensor:
    """OpenCV's float32 GaussianBlur(7x7, sigma 7/6, BORDER_REPLICATE) of (B, H, W), with its
    rounding: rows accumulate fma(k[i], x[i], s) for i = 0..6; columns start from k[3] * centre
    and add fma(k[i], up + down, s) for i = 2, 1, 0 (``torch.add(alpha=k)`` is the fused step)."""
    height, width = image.shape[-2:]
    taps, pad = _GAUSSIAN_TAPS, _WINDOW_SIZE // 2
    wide = _replicate(image, 2, pad)
    rows = wide[..., :width] * taps[0]
    for i in range(1, _WINDOW_SIZE):
        rows = torch.add(rows, wide[..., i : i + width], alpha=taps[i])
    tall = _replicate(rows, 1, pad)
    out = tall[:, pad : pad + height] * taps[pad]
    for i in reversed(range(pad)):
        out = torch.add(out, tall[:, i : i + height] + tall[:, 2 * pad - i : 2 * pad - i + height], alpha=taps[i])
    return out


def _mscn(image: torch.Tensor) -> torch.Tensor:
    """Mean-subtracted contrast-normalised map, each step rounded to float32 as in OpenCV."""
    mu = _gaussian_blur(image)
    variance = _gaussian_blur(image * image) - mu * mu  # not fused: OpenCV rounds mu^2
    sigma = variance.sqrt() + _INV_255  # NaN where the variance came out negative
    return torch.nan_to_num((image - mu) / sigma, nan=0.0)  # OpenCV drops NaN pixels from every fit


def _scale_sums(image: torch.Tensor) -> torch.Tensor:
    """(B, 5 maps, 6) float64 moment sums of the MSCN map and its four paired products."""
    mscn = _mscn(image)
    maps = [mscn] + [_paired_product(mscn, shift) for shift in _PAIR_SHIFTS]
    if torch.compiler.is_compiling():
        # One (B, 5, H, W) buffer: inductor would otherwise recompute the MSCN map inside every map's sums
        # (four times eager's time); eager skips the copy. The sums are the same either way.
        return _moment_sums(torch.stack(maps, dim=1))
    return torch.stack([_moment_sums(values) for values in maps], dim=1)


def _paired_product(mscn: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """product[i, j] = mscn[i, j] * mscn[i + di, j + dj], 0 where the neighbour is outside."""
    di, dj = shift
    height, width = mscn.shape[-2:]
    top, bottom = max(0, -di), max(0, di)
    product = mscn[:, top : height - bottom, : width - dj] * mscn[:, top + di : height - bottom + di, dj:]
    return nn.functional.pad(product, (0, dj, top, bottom))


def _moment_sums(values: torch.Tensor) -> torch.Tensor:
    """(..., 6) float64 per (H, W) map of ``values`` (..., H, W): sum x^2, sum max(x, 0)^2, sum |x|,
    count(x != 0), sum sign(x), and the number of pixels (zeros included: OpenCV divides by all of them).

    Sums run in float32 along rows and in float64 across rows: OpenCV sums in double, and the
    AGGD mean (a difference of two close sigmas) magnifies relative errors a thousandfold."""
    positive = values.clamp(min=0)
    sign = torch.sign(values)

    def total(row_sums: torch.Tensor) -> torch.Tensor:
        return row_sums.double().sum(-1)

    def total_sq(x: torch.Tensor) -> torch.Tensor:  # the norm reads once, writes nothing
        return total(torch.linalg.vector_norm(x, dim=-1).square())

    sum_abs = 2 * total(positive.sum(-1)) - total(values.sum(-1))
    nonzero = total_sq(sign).round()  # sign^2 sums are whole numbers
    count = torch.full_like(nonzero, values.shape[-2] * values.shape[-1])
    return torch.stack([total_sq(values), total_sq(positive), sum_abs, nonzero, total(sign.sum(-1)), count], -1)


def _aggd_features(sums: torch.Tensor, shape_grid: torch.Tensor, ratio_grid: torch.Tensor, lgamma_1: torch.Tensor,
                   lgamma_2: torch.Tensor, lgamma_3: torch.Tensor) -> torch.Tensor:
    """(B, 2 scales, 5 maps, 6 sums) float64 -> (B, 36) features; all maps fitted at once."""
    sum_sq, pos_sq, abs_sum, nonzero, sign_sum, total = sums.unbind(-1)
    pos_count = (nonzero + sign_sum) / 2
    neg_count = (nonzero - sign_sum) / 2
    left_var = (sum_sq - pos_sq) / neg_count
    right_var = pos_sq / pos_count
    left_sigma, right_sigma = left_var.sqrt(), right_var.sqrt()
    ratio = left_sigma / right_sigma
    r_hat = (abs_sum / total) ** 2 / (sum_sq / total)
    r_hat_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    index = _nearest_shape(r_hat_norm, ratio_grid)
    shape = shape_grid[index]
    # AGGD mean: (right - left sigma) * G(2/g) / G(1/g) * sqrt(G(1/g) / G(3/g))
    lg1, lg2, lg3 = lgamma_1[index], lgamma_2[index], lgamma_3[index]
    mean = (right_sigma - left_sigma) * torch.exp(lg2 - lg1 + 0.5 * (lg1 - lg3))
    per_map = torch.stack([shape, mean, left_var, right_var], dim=-1)  # (B, 2, 5, 4)
    mscn_fit = torch.stack([shape[..., 0], (left_var[..., 0] + right_var[..., 0]) / 2], dim=-1)
    pair_fits = per_map[:, :, 1:].flatten(2)
    return torch.cat([mscn_fit, pair_fits], dim=-1).flatten(1)


def _nearest_shape(target: torch.Tensor, ratio_grid: torch.Tensor) -> torch.Tensor:
    """Index of the grid shape whose ratio is nearest ``target`` (ties: the larger), as OpenCV's scan.

    The first grid ratio >= target is found by counting the smaller ones (``searchsorted`` on an
    increasing grid, with ops that every exporter has)."""
    last = ratio_grid.numel() - 1
    upper = (ratio_grid < target.unsqueeze(-1)).sum(-1).clamp(max=last)
    lower = (upper - 1).clamp(min=0)
    take_upper = (ratio_grid[upper] - target).abs() <= (ratio_grid[lower] - target).abs()
    index = torch.where(take_upper, upper, lower)
    # A NaN target never stops OpenCV's scan: it ends on the last grid shape.
    return torch.where(torch.isnan(target), last, index)

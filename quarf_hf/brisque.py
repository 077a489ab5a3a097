"""Batched BRISQUE features in torch, matching OpenCV's ``QualityBRISQUE_computeFeatures``.

``BrisqueFeatures()(pixel_values)`` maps RGB or grayscale images ``(B, 3 | 1, H, W)`` with values
in [0, 1] to the 36 BRISQUE features (Mittal et al., 2012) of each image, in OpenCV's order and
with OpenCV's definitions (opencv-contrib ``modules/quality/src/qualitybrisque.cpp``), so that an
SVR trained on OpenCV's features can be fed these. Per scale (full size, then half size):

* feature 0-1: AGGD fit of the MSCN map: shape, and the mean of the left and right variances
  (OpenCV fits an asymmetric GGD here too);
* features 2-17: for the products of each MSCN pixel with its right, lower, lower-right and
  upper-right neighbour: AGGD shape, mean, left variance, right variance.

How OpenCV computes them, and how this module does the same for a whole batch at once:

* OpenCV receives an 8-bit image: the input is quantised to 8 bits (``round(255 x)``), turned
  to gray with OpenCV's fixed-point ``BGR2GRAY`` weights and scaled by ``float32(1 / 255)``.
* MSCN: ``(I - mu) / (sigma + 1/255)`` with ``mu`` and ``sigma`` from a 7x7 Gaussian window,
  sigma 7/6, replicated borders. Where the float32 variance comes out negative OpenCV gets NaN,
  and NaN pixels drop out of every fit: those pixels are 0 here.
* The half-size image is ``cv::resize(W // 2, H // 2, INTER_CUBIC)`` (a = -0.75, OpenCV's
  pixel-centre mapping, replicated borders), reproduced with four-tap gathers.
* AGGD fit: OpenCV scans shapes 0.2, 0.201, ... < 10 and keeps the first local minimum of
  ``|r(shape) - r_hat|``. ``r`` is increasing, so that is the grid point nearest ``r_hat``; it
  is found with ``torch.searchsorted`` on the precomputed grid, for all images and maps at once.
  Products with a neighbour outside the image are 0 and count in the number of samples, as in
  OpenCV.

Exactly flat 7x7 windows. In a window whose 49 pixels are equal, the exact MSCN is 0, but
OpenCV's float32 arithmetic leaves there either exactly 0, a NaN (negative variance), or a
rounding residue of about 1e-6 that it counts as a positive or negative sample. Images with
large flat areas (JPEG blocks, clipped skies) change their features by several percent with
these counts. This module reproduces them: the value OpenCV gets in a flat window depends only
on the window's value, and is computed once per gray level by emulating OpenCV's float32
operations (its row filter accumulates with fused multiply-adds in order, its column filter
adds symmetric pairs). Flat windows are found exactly (window maximum == minimum).

Remaining differences from OpenCV, and why:

* Non-flat windows: the blur here rounds differently from OpenCV's (IPP / SIMD) filters, so
  values differ by float32 rounding (relative ~1e-6); near-flat windows whose variance is near
  0 can then fall on the other side of OpenCV's "negative variance" rule.
* Flat windows of the half-size image: OpenCV's resize (IPP) does not return a flat region's
  value exactly in about a third of the pixels, leaving rounding residue that cannot be
  reproduced. Here the resize preserves flat regions exactly, and their flat windows get the
  full-size rule. On strongly compressed JPEGs this moves some half-scale features by up to a
  few percent; elsewhere the features agree to about 1e-4 (see tests/test_brisque.py).
* Degenerate inputs (a constant image, or any map without negative or without positive
  values) give NaN variances and means, and shape 9.999, exactly as OpenCV's 0/0 does.

Input: ``(B, 1 | 3, H, W)`` floating tensor, RGB order, values in [0, 1] (checked with a
tolerance of ``RANGE_TOLERANCE``), finite, ``H, W >= MIN_SIZE`` (14: the half-size image must
still hold the 7x7 window; OpenCV itself accepts smaller images and returns NaN or noise).
Computation is float32 (OpenCV's working type) with float64 sums and fits, on the input's
device; the output is ``(B, 36)`` in the input's dtype. No weights; buffers are not persistent.
The input check is the only host synchronisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 36
# Both sides of the half-size image must hold the 7x7 Gaussian window.
MIN_SIZE = 14
# Un-normalised images may overshoot [0, 1] by rounding; anything further is a wrong scale.
RANGE_TOLERANCE = 0.01

# OpenCV's COLOR_BGR2GRAY on 8-bit images: gray = (9798 R + 19235 G + 3735 B + 2^14) >> 15.
_GRAY_WEIGHTS_U8 = (9798.0, 19235.0, 3735.0)
_GRAY_SHIFT_U8 = 32768.0
_LEVELS = 256

_WINDOW_SIZE = 7
_WINDOW_SIGMA = 7.0 / 6.0
# Added to the local standard deviation before dividing (OpenCV's "avoid divide by zero").
_SIGMA_OFFSET = 1.0 / 255.0
_CUBIC_A = -0.75  # OpenCV's INTER_CUBIC kernel parameter
# Neighbour offsets (row, column) of the paired products: right, down, down-right, up-right.
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def _gamma_search_grid() -> tuple[list[float], list[float]]:
    """The AGGD shapes OpenCV tries and their ratio r(g) = G(2/g)^2 / (G(1/g) G(3/g)).

    OpenCV steps ``g`` from 0.2 by 0.001 while ``g < 10``, adding in double precision; the
    grid is accumulated the same way so the chosen shapes are the same doubles.
    """
    shapes, ratios = [], []
    g = 0.2
    while g < 10:
        shapes.append(g)
        ratios.append(math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)))
        g += 0.001
    return shapes, ratios


def _gaussian_kernel() -> torch.Tensor:
    """OpenCV's getGaussianKernel(7, 7/6, CV_32F): computed in double, normalised, float32."""
    half = (_WINDOW_SIZE - 1) / 2
    x = torch.arange(_WINDOW_SIZE, dtype=torch.float64) - half
    values = torch.exp(-(x**2) / (2 * _WINDOW_SIGMA**2))
    return (values / values.sum()).float()


def _fma32(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 fused multiply-add: the product of two float32 is exact in float64."""
    return (a.double() * b.double() + c.double()).float()


def _opencv_flat_window_mscn(value: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The MSCN OpenCV computes inside a flat 7x7 window of float32 ``value`` (NaN -> 0).

    OpenCV's float32 row filter accumulates ``fma(k[i], x[i], sum)`` for i = 0..6; its column
    filter starts from ``k[3] * center`` and adds ``fma(k[i], (up + down), sum)`` for the
    pairs i = 2, 1, 0. Then var = E[x^2] - mu*mu, sigma = sqrt(var) + 1/255, (x - mu) / sigma,
    each rounded to float32.
    """

    def blur_constant(x: torch.Tensor) -> torch.Tensor:
        row = torch.zeros_like(x)
        for tap in kernel:
            row = _fma32(tap, x, row)
        col = row * kernel[3]
        for i in (2, 1, 0):
            col = _fma32(kernel[i], row + row, col)
        return col

    mu = blur_constant(value)
    mean_sq = blur_constant(value * value)
    variance = mean_sq - mu * mu
    sigma = variance.sqrt() + torch.tensor(_SIGMA_OFFSET, dtype=torch.float32)
    return torch.nan_to_num((value - mu) / sigma, nan=0.0)


@dataclass(frozen=True)
class _Tables:
    """Constants of the computation, on one device."""

    shape_grid: torch.Tensor  # (n,) float64 AGGD shapes OpenCV tries
    ratio_grid: torch.Tensor  # (n,) float64 increasing r(shape)
    window: torch.Tensor  # (7, 7) float32 Gaussian window
    level_values: torch.Tensor  # (256,) float32 gray level k as OpenCV stores it
    flat_mscn: torch.Tensor  # (256,) float32 OpenCV's MSCN in a flat window of level k

    @classmethod
    def build(cls) -> "_Tables":
        shapes, ratios = _gamma_search_grid()
        kernel = _gaussian_kernel()
        levels = torch.arange(_LEVELS, dtype=torch.float32) * torch.tensor(1 / 255, dtype=torch.float32)
        return cls(
            shape_grid=torch.tensor(shapes, dtype=torch.float64),
            ratio_grid=torch.tensor(ratios, dtype=torch.float64),
            window=torch.outer(kernel, kernel),
            level_values=levels,
            flat_mscn=_opencv_flat_window_mscn(levels, kernel),
        )

    def to(self, device: torch.device) -> "_Tables":
        return _Tables(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class BrisqueFeatures(nn.Module):
    """The 36 BRISQUE features of each image in a batch, as OpenCV computes them.

    ``forward(pixel_values)`` takes ``(B, 1 | 3, H, W)`` floats in [0, 1] (RGB) and returns
    ``(B, 36)`` in the input's dtype. See the module docstring for definitions and the
    remaining differences from OpenCV. The module has no parameters and no state-dict entries.
    """

    feature_dim = FEATURE_DIM

    def __init__(self) -> None:
        super().__init__()
        # Exact-value tables stay out of the buffers, so that a model-wide .half() cannot
        # round them; they are copied once to each device they are used on.
        self._tables = {torch.device("cpu"): _Tables.build()}

    def _tables_on(self, device: torch.device) -> _Tables:
        if device not in self._tables:
            self._tables[device] = self._tables[torch.device("cpu")].to(device)
        return self._tables[device]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        _check_pixel_values(pixel_values)
        tables = self._tables_on(pixel_values.device)
        levels = _gray_levels(pixel_values)
        gray = levels * tables.level_values[1]
        half = _half_size_cubic(gray)
        sums = torch.cat(
            [
                _scale_sums(gray, _window_is_flat(levels.to(torch.uint8)), tables),
                _scale_sums(half, _window_is_flat(half), tables),
            ],
            dim=1,
        )
        return _aggd_features(sums, tables).to(pixel_values.dtype)


def _mscn(image: torch.Tensor, flat: torch.Tensor, tables: _Tables) -> torch.Tensor:
    """Mean-subtracted contrast-normalised map; flat windows get OpenCV's own value."""
    mu = _gaussian_blur(image, tables.window)
    variance = _gaussian_blur(image * image, tables.window).addcmul_(mu, mu, value=-1)
    sigma = variance.clamp(min=0).sqrt_().add_(_SIGMA_OFFSET)
    mscn = torch.sub(image, mu, out=mu).div_(sigma)
    mscn.masked_fill_(variance < 0, 0.0)  # OpenCV: sqrt(negative) = NaN, dropped from fits
    # A flat window's value is a gray level (at both scales: the resize keeps flat regions
    # exactly) and gets OpenCV's value for that level; anything else flat is a coincidence
    # and gets the exact MSCN, 0.
    level = (image * 255).round_().clamp_(0, _LEVELS - 1)
    is_level = level * tables.level_values[1] == image  # how level_values were made
    flat_value = tables.flat_mscn.index_select(0, level.int().flatten()).view_as(image)
    return torch.where(flat, flat_value.masked_fill_(~is_level, 0.0), mscn)


def _scale_sums(image: torch.Tensor, flat: torch.Tensor, tables: _Tables) -> torch.Tensor:
    """(B, 5 maps, 6) float64 moment sums of the MSCN map and its four paired products."""
    mscn = _mscn(image, flat, tables)
    # Three work maps reused by the five maps: fresh large allocations cost page faults.
    product, positive, sign = (torch.empty_like(mscn) for _ in range(3))
    sums = [_moment_sums(mscn, positive, sign)]
    for shift in _PAIR_SHIFTS:
        sums.append(_moment_sums(_paired_product(mscn, shift, out=product), positive, sign))
    return torch.stack(sums, dim=1)


def _aggd_features(sums: torch.Tensor, tables: _Tables) -> torch.Tensor:
    """(B, 10, 6) sums (2 scales x 5 maps) -> (B, 36) features; all maps fitted at once."""
    sum_sq, pos_sq, abs_sum, nonzero, sign_sum, total = sums.unbind(-1)
    pos_count = (nonzero + sign_sum) / 2
    neg_count = (nonzero - sign_sum) / 2
    left_var = (sum_sq - pos_sq) / neg_count
    right_var = pos_sq / pos_count
    left_sigma, right_sigma = left_var.sqrt(), right_var.sqrt()
    ratio = left_sigma / right_sigma
    r_hat = (abs_sum / total) ** 2 / (sum_sq / total)
    r_hat_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    shape = _nearest_shape(r_hat_norm, tables)
    # AGGD mean: (right - left sigma) * G(2/g) / G(1/g) * sqrt(G(1/g) / G(3/g))
    lg1, lg2, lg3 = torch.lgamma(1 / shape), torch.lgamma(2 / shape), torch.lgamma(3 / shape)
    mean = (right_sigma - left_sigma) * torch.exp(lg2 - lg1 + 0.5 * (lg1 - lg3))
    per_map = torch.stack([shape, mean, left_var, right_var], dim=-1).view(-1, 2, 5, 4)
    mscn_fit = torch.stack([per_map[:, :, 0, 0], per_map[:, :, 0, 2:].mean(-1)], dim=-1)
    pair_fits = per_map[:, :, 1:, :].flatten(2)
    return torch.cat([mscn_fit, pair_fits], dim=-1).flatten(1)


def _nearest_shape(target: torch.Tensor, tables: _Tables) -> torch.Tensor:
    """Grid shape whose ratio is nearest ``target`` (ties: the larger), as OpenCV's scan."""
    ratios = tables.ratio_grid
    last = ratios.numel() - 1
    upper = torch.searchsorted(ratios, target.contiguous()).clamp_(max=last)
    lower = (upper - 1).clamp_(min=0)
    take_upper = (ratios[upper] - target).abs() <= (ratios[lower] - target).abs()
    index = torch.where(take_upper, upper, lower)
    # A NaN target never stops OpenCV's scan: it ends on the last grid shape.
    index = torch.where(torch.isnan(target), last, index)
    return tables.shape_grid[index]


def _check_pixel_values(pixel_values: torch.Tensor) -> None:
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(f"pixel_values: expected a torch.Tensor, found {type(pixel_values).__name__}")
    if not pixel_values.is_floating_point():
        raise TypeError(f"pixel_values: expected a floating dtype (values in [0, 1]), found {pixel_values.dtype}")
    shape = tuple(pixel_values.shape)
    if pixel_values.ndim != 4:
        raise ValueError(f"pixel_values: expected 4 dims (B, C, H, W), found shape {shape}")
    if shape[1] not in (1, 3):
        raise ValueError(f"pixel_values: expected 1 or 3 channels (dim 1), found shape {shape}")
    if shape[0] == 0 or min(shape[2:]) < MIN_SIZE:
        raise ValueError(f"pixel_values: expected B >= 1 and H, W >= {MIN_SIZE}, found shape {shape}")
    low, high = (float(v) for v in torch.stack(torch.aminmax(pixel_values)).tolist())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"pixel_values: expected finite values, found min {low}, max {high}")
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"pixel_values: expected values in [0, 1], found min {low:.4g}, max {high:.4g}")


def _gray_levels(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, H, W) float32 gray levels 0..255 as OpenCV's 8-bit BGR2GRAY computes them."""
    channels = pixel_values.unbind(1)
    if len(channels) == 1:
        return _to_levels(channels[0])
    gray = torch.zeros_like(channels[0], dtype=torch.float32)
    for channel, weight in zip(channels, _GRAY_WEIGHTS_U8):  # R, G, B
        gray.add_(_to_levels(channel), alpha=weight)  # integers < 2^24: exact in float32
    return gray.add_(_GRAY_SHIFT_U8 / 2).div_(_GRAY_SHIFT_U8).floor_()


def _to_levels(channel: torch.Tensor) -> torch.Tensor:
    return (channel.float() * 255).round_().clamp_(0, 255)


def _window_is_flat(image: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool: all pixels of the 7x7 window (replicated borders) are equal."""
    return _window_extreme(image, torch.maximum) == _window_extreme(image, torch.minimum)


def _window_extreme(image: torch.Tensor, pick) -> torch.Tensor:
    """Max or min over the 7x7 window by doubling spans: 1 -> 2 -> 4 -> 7, rows then columns."""
    pad = _WINDOW_SIZE // 2
    x = F.pad(image[:, None], (pad, pad, pad, pad), mode="replicate")[:, 0]
    for dim in (2, 1):
        for step in (1, 2, 3):
            size = x.shape[dim] - step
            x = pick(x.narrow(dim, 0, size), x.narrow(dim, step, size))
    return x


def _cubic_taps(src: int, dst: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices (dst, 4) and float32 weights (dst, 4) of OpenCV's INTER_CUBIC on one axis."""
    scale = 1.0 / (dst / src)  # OpenCV inverts dst/src
    pos = ((torch.arange(dst, device=device, dtype=torch.float64) + 0.5) * scale - 0.5).float()
    start = torch.floor(pos)
    t = pos - start
    a = _CUBIC_A
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    w3 = 1 - w0 - w1 - w2
    index = (start.long()[:, None] + torch.arange(-1, 3, device=device)).clamp_(0, src - 1)
    return index, torch.stack([w0, w1, w2, w3], dim=1)


def _resize_rows(image: torch.Tensor, size: int) -> torch.Tensor:
    """Cubic resize of dim 1 of (B, H, W) to ``size`` rows, written around the second tap,
    sum_k w_k S_k = S_1 + sum_{k != 1} w_k (S_k - S_1), so that flat regions keep their
    value exactly. Whole rows are gathered: contiguous copies."""
    index, weights = _cubic_taps(image.shape[1], size, image.device)
    center = image.index_select(1, index[:, 1])
    out = center.clone()
    for k in (0, 2, 3):
        tap = image.index_select(1, index[:, k]).sub_(center)
        out.addcmul_(tap, weights[:, k].view(1, size, 1))
    return out


def _half_size_cubic(gray: torch.Tensor) -> torch.Tensor:
    """cv::resize(gray, (W // 2, H // 2), INTER_CUBIC) of a (B, H, W) batch."""
    height, width = gray.shape[-2:]
    rows_done = _resize_rows(gray, height // 2).transpose(1, 2).contiguous()
    return _resize_rows(rows_done, width // 2).transpose(1, 2).contiguous()


def _gaussian_blur(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """7x7 Gaussian blur of (B, H, W) with replicated borders (cv::BORDER_REPLICATE)."""
    batch = image.shape[0]
    pad = _WINDOW_SIZE // 2
    # The images become the channels of one image: channels-last depthwise convolution is
    # the fast path of oneDNN and cuDNN for a single-channel filter.
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="replicate")
    padded = padded.contiguous(memory_format=torch.channels_last)
    kernel = window.view(1, 1, _WINDOW_SIZE, _WINDOW_SIZE).expand(batch, 1, -1, -1)
    return F.conv2d(padded, kernel, groups=batch)[0].contiguous()


def _paired_product(mscn: torch.Tensor, shift: tuple[int, int], out: torch.Tensor) -> torch.Tensor:
    """out[i, j] = mscn[i, j] * mscn[i + di, j + dj], 0 where the neighbour is outside."""
    di, dj = shift
    height, width = mscn.shape[-2:]
    rows = slice(max(0, -di), height - max(0, di))
    cols = slice(0, width - dj)
    neighbour_rows = slice(rows.start + di, rows.stop + di)
    neighbour_cols = slice(cols.start + dj, cols.stop + dj)
    # Only the strips the product leaves out need zeroing.
    out[:, :, cols.stop :] = 0
    out[:, : rows.start] = 0
    out[:, rows.stop :] = 0
    torch.mul(mscn[:, rows, cols], mscn[:, neighbour_rows, neighbour_cols], out=out[:, rows, cols])
    return out


def _moment_sums(values: torch.Tensor, positive: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """(B, 6) float64 per map: sum x^2, sum max(x, 0)^2, sum |x|, count(x != 0), sum sign(x),
    and the number of pixels (zeros included: OpenCV divides by all of them).

    ``positive`` and ``sign`` are work maps of the same shape, overwritten."""
    batch = values.shape[0]
    flat = values.view(batch, 1, -1)
    positive = torch.clamp(values, min=0, out=positive).view(batch, 1, -1)
    sign = torch.sign(values, out=sign).view(batch, 1, -1)
    # Dot products through bmm: one pass each, no temporaries the size of the map.
    dots = torch.cat(
        [
            torch.bmm(flat, flat.transpose(1, 2)),
            torch.bmm(positive, positive.transpose(1, 2)),
            torch.bmm(flat, sign.transpose(1, 2)),
            torch.bmm(sign, sign.transpose(1, 2)),
            sign.sum(-1, keepdim=True),
            torch.full_like(sign[:, :, :1], flat.shape[-1]),
        ],
        dim=-1,
    )
    return dots[:, 0].double()

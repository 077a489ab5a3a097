"""Digital processing artefacts: JPEG, pixelation, contrast, brightness, saturation.
All deterministic (the same image always gives the same result). Only pixelation has a size in
pixels (see the size rule in :mod:`.registry`): JPEG's 8x8 blocks belong to the codec whatever the
image size, and the tone kinds work per pixel."""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from ._ops import pick

# ---------------------------------------------------------------- JPEG
# Standard tables from the JPEG specification (ITU-T T.81, Annex K), for quality 50.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99), (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99), (99, 99, 99, 99, 99, 99, 99, 99),
)


def _quant_table(table, quality: int, device) -> torch.Tensor:
    """libjpeg's quality scaling (jcparam.c): 5000/q below 50, 200 - 2q above, clamp to 1..255."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    t = torch.tensor(table, dtype=torch.float32, device=device)
    return torch.floor((t * scale + 50.0) / 100.0).clamp(1.0, 255.0)


def _dct_matrix(device) -> torch.Tensor:
    """Orthonormal 8-point DCT-II; D @ block @ D.T is exactly JPEG's forward DCT."""
    n = torch.arange(8, device=device, dtype=torch.float32)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def _code_plane(plane: torch.Tensor, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Level-shift, DCT, quantise (true rounding), dequantise and invert the 8x8 blocks of
    ``plane`` (B, H, W), H and W multiples of 8, values in 0..255."""
    b, h, w = plane.shape
    blocks = (plane - 128.0).reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3)
    coeffs = d @ blocks @ d.T
    coeffs = torch.round(coeffs / q) * q
    blocks = d.T @ coeffs @ d
    return blocks.transpose(2, 3).reshape(b, h, w) + 128.0


def jpeg_compression(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Baseline JPEG round trip, batched in torch: RGB -> YCbCr (JFIF), 4:2:0 chroma subsampling,
    8x8 DCT, quantisation with the standard tables scaled by quality, decode with bilinear chroma
    upsampling, 8-bit output. Close to PIL/libjpeg at the same quality (see the tests).

    severity 1..5 -> JPEG quality 25, 18, 15, 10, 7 (ImageNet-C values).
    """
    quality = pick((25, 18, 15, 10, 7), severity)
    b, _, h, w = x.shape
    # pad to whole 16x16 macroblocks by edge replication, as encoders do
    ph, pw = (-h) % 16, (-w) % 16
    rgb = F.pad(x, (0, pw, 0, ph), mode="replicate") * 255.0
    r, g, bl = rgb.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128.0
    # round to 8 bits like the encoder's colour conversion
    y, cb, cr = torch.round(y), torch.round(cb), torch.round(cr)
    chroma = F.avg_pool2d(torch.stack((cb, cr), 1), 2)  # 4:2:0
    d = _dct_matrix(x.device)
    y = _code_plane(y, _quant_table(_LUMA_TABLE, quality, x.device), d)
    qc = _quant_table(_CHROMA_TABLE, quality, x.device)
    hh, ww = chroma.shape[-2:]
    chroma = _code_plane(chroma.reshape(b * 2, hh, ww), qc, d).reshape(b, 2, hh, ww)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, 0] - 128.0, chroma[:, 1] - 128.0
    out = torch.stack((y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb), 1)
    out = torch.round(out.clamp(0.0, 255.0)) / 255.0
    return out[:, :, :h, :w]


# ---------------------------------------------------------------- resampling and tone
def pixelate(x: torch.Tensor, severity: int, generator=None, scale: float = 1.0) -> torch.Tensor:
    """Blocky pixels: the mean of each b x b block fills the block (box downscale, nearest
    upscale, as ImageNet-C does with PIL). Whole-pixel blocks keep the severities monotone.

    severity 1..5 -> block side b 2, 3, 4, 6, 8 pixels, times ``scale``. A whole-pixel block is
    cut exactly; a fractional one (scaled) gives round(H / b) x round(W / b) cells (area
    downscale, nearest upscale); a block of at most one pixel leaves the image as it is.
    """
    block = pick((2, 3, 4, 6, 8), severity) * scale
    h, w = x.shape[-2:]
    if block <= 1.0:
        return x.clone()
    if block != round(block):
        cells = (max(1, round(h / block)), max(1, round(w / block)))
        return F.interpolate(F.interpolate(x, size=cells, mode="area"), size=(h, w), mode="nearest")
    block = int(round(block))
    padded = F.pad(x, (0, (-w) % block, 0, (-h) % block), mode="replicate")
    small = F.avg_pool2d(padded, block)
    big = small.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)
    return big[:, :, :h, :w]


def contrast(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Contrast reduction towards each image's mean: (x - mean) * c + mean.

    severity 1..5 -> c 0.4, 0.3, 0.2, 0.1, 0.05 (ImageNet-C values).
    """
    c = pick((0.4, 0.3, 0.2, 0.1, 0.05), severity)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


def brightness(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Over-exposure: add to the HSV value channel (hue and saturation kept), clipped at 1.

    severity 1..5 -> value offset 0.1, 0.2, 0.3, 0.4, 0.5 (ImageNet-C values).
    """
    offset = pick((0.1, 0.2, 0.3, 0.4, 0.5), severity)
    hsv = kornia.color.rgb_to_hsv(x.clamp(0, 1))
    v = (hsv[:, 2:3] + offset).clamp(0.0, 1.0)
    return kornia.color.hsv_to_rgb(torch.cat((hsv[:, :2], v), 1))


def saturate(x: torch.Tensor, severity: int, generator=None) -> torch.Tensor:
    """Over-saturation: HSV saturation s -> s * gain + offset, clipped at 1 (grey pixels stay
    grey until the offset kicks in).

    severity 1..5 -> (gain, offset) (1.5, 0), (2, 0.05), (3, 0.1), (5, 0.2), (10, 0.3).
    """
    gain, offset = pick(((1.5, 0.0), (2.0, 0.05), (3.0, 0.1), (5.0, 0.2), (10.0, 0.3)), severity)
    hsv = kornia.color.rgb_to_hsv(x.clamp(0, 1))
    s = (hsv[:, 1:2] * gain + offset).clamp(0.0, 1.0)
    return kornia.color.hsv_to_rgb(torch.cat((hsv[:, :1], s, hsv[:, 2:]), 1))

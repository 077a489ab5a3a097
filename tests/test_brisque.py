"""BrisqueFeatures against OpenCV's own implementation (opencv-contrib ``cv2.quality``).

The reference is ``cv2.quality.QualityBRISQUE_computeFeatures`` fed the very same 8-bit pixels
(BGR order, as OpenCV expects). Agreement is judged per feature across a set of images:
Pearson correlation >= 0.999 and median relative difference <= 1%.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quarf_hf.models.brisque import FEATURE_DIM, MIN_SIZE, BrisqueFeatures

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "natural-images"
PHOTO_SIZE = 320  # longest side; keeps the test fast


@pytest.fixture(scope="module")
def brisque() -> BrisqueFeatures:
    return BrisqueFeatures()


def opencv_features(image: np.ndarray) -> np.ndarray:
    """OpenCV's features of an 8-bit RGB (H, W, 3) or gray (H, W) image."""
    cv2 = pytest.importorskip("cv2", reason="test dependency opencv-contrib-python-headless missing")
    if not hasattr(cv2, "quality"):
        pytest.skip("cv2 has no quality module: install opencv-contrib-python-headless")
    bgr = np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3 else image
    return cv2.quality.QualityBRISQUE_computeFeatures(bgr)[0].astype(np.float64)


def to_pixel_values(image: np.ndarray) -> torch.Tensor:
    """8-bit (H, W[, 3]) -> (1, C, H, W) float32 in [0, 1]."""
    tensor = torch.from_numpy(image).float() / 255
    return tensor.permute(2, 0, 1)[None] if image.ndim == 3 else tensor[None, None]


def torch_features(brisque: BrisqueFeatures, image: np.ndarray) -> np.ndarray:
    return brisque(to_pixel_values(image))[0].double().numpy()


def assert_agrees_with_opencv(brisque: BrisqueFeatures, images: dict[str, np.ndarray]) -> None:
    ours = np.stack([torch_features(brisque, image) for image in images.values()])
    reference = np.stack([opencv_features(image) for image in images.values()])
    assert ours.shape == reference.shape == (len(images), FEATURE_DIM)
    assert np.isfinite(reference).all() and np.isfinite(ours).all()
    relative = np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-12)
    median_relative = np.median(relative, axis=0)
    correlation = np.array([np.corrcoef(ours[:, j], reference[:, j])[0, 1] for j in range(FEATURE_DIM)])
    worst = int(np.argmax(median_relative))
    assert median_relative.max() <= 0.01, f"feature {worst}: median relative difference {median_relative[worst]:.4f}"
    worst = int(np.argmin(correlation))
    assert correlation.min() >= 0.999, f"feature {worst}: correlation {correlation[worst]:.6f}"


def generated_images() -> dict[str, np.ndarray]:
    """Smooth gradients + noise, textures, noise, blocks and clipped areas; odd and even
    sizes down to the minimum; RGB and gray."""
    rng = np.random.default_rng(0)
    images = {}
    for height, width in [(64, 80), (97, 131), (120, 90), (33, 47), (MIN_SIZE, MIN_SIZE + 1)]:
        yy, xx = np.mgrid[:height, :width].astype(np.float64)
        gradient = (255 * (0.2 + 0.6 * (xx / width + yy / height) / 2))[..., None] * np.array([1.0, 0.8, 0.6])
        images[f"gradient {height}x{width}"] = gradient + rng.normal(0, 6, (height, width, 3))
        texture = 128 + 60 * np.sin(xx / 3.0 + rng.uniform(0, 3)) * np.cos(yy / 5.0)
        images[f"texture {height}x{width}"] = texture + rng.normal(0, 4, (height, width))
        images[f"uniform {height}x{width}"] = rng.uniform(0, 256, (height, width, 3))
        # Constant 8x8 blocks (flat windows, as in JPEG) with a few noisy pixels.
        blocks = rng.integers(40, 220, (height // 8 + 1, width // 8 + 1)).repeat(8, 0).repeat(8, 1)
        sparse = rng.normal(0, 20, (height, width)) * (rng.random((height, width)) < 0.05)
        images[f"blocks {height}x{width}"] = blocks[:height, :width] + sparse
        # Over-exposed: a steep gradient clipped at both ends.
        images[f"clipped {height}x{width}"] = (3 * gradient - 250) + rng.normal(0, 3, (height, width, 3))
    return {name: np.clip(np.round(image), 0, 255).astype(np.uint8) for name, image in images.items()}


def test_matches_opencv_on_generated_images(brisque):
    """Per feature over 25 generated images: correlation >= 0.999, median rel. diff <= 1%."""
    assert_agrees_with_opencv(brisque, generated_images())


def gaussian_blur_uint8(image: np.ndarray, sigma: float) -> np.ndarray:
    """Plain-torch separable Gaussian blur (reflect borders), back to 8 bits."""
    radius = math.ceil(3 * sigma)
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    x = torch.from_numpy(image).double().permute(2, 0, 1)[:, None]  # (3, 1, H, W)
    x = torch.nn.functional.pad(x, (radius,) * 4, mode="reflect")
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, -1, 1))
    return x[:, 0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


def jpeg_uint8(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.array(Image.open(buffer).convert("RGB"))


def photo_images() -> dict[str, np.ndarray]:
    """The photos (longest side 320) and degraded copies: noise, blur, JPEG q=10 / q=40, gray."""
    rng = np.random.default_rng(1)
    images = {}
    for path in sorted(PHOTOS.glob("*.png")):
        photo = Image.open(path).convert("RGB")
        photo.thumbnail((PHOTO_SIZE, PHOTO_SIZE), Image.BICUBIC)
        rgb = np.array(photo)
        images[path.stem] = rgb
        images[f"{path.stem} noise"] = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).round().astype(np.uint8)
        images[f"{path.stem} blur"] = gaussian_blur_uint8(rgb, sigma=1.5)
        images[f"{path.stem} jpeg10"] = jpeg_uint8(rgb, quality=10)
        images[f"{path.stem} jpeg40"] = jpeg_uint8(rgb, quality=40)
        images[f"{path.stem} gray"] = np.array(photo.convert("L"))
    return images


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"photos not found at {PHOTOS}")
def test_matches_opencv_on_photos_and_degradations(brisque):
    """Per feature over 7 photos x 6 versions: correlation >= 0.999, median rel. diff <= 1%."""
    images = photo_images()
    assert len(images) == 42
    assert_agrees_with_opencv(brisque, images)


def test_flat_areas_match_opencv_at_full_scale(brisque):
    """Piecewise-constant images (flat 7x7 windows, as in JPEG): there OpenCV's float32
    rounding decides whether a pixel counts as a sample, which moves features by tens of
    percent; the blur reproduces it. Width 88, a multiple of 8, so that OpenCV's vectorised
    filter (not its scalar tail) computes every column: the full-scale features (0-17) must
    then equal OpenCV's up to the float sums (relative 1e-5)."""
    rng = np.random.default_rng(2)
    for trial in range(4):
        levels = rng.integers(0, 256, (6, 8))
        image = levels.repeat(11, 0).repeat(11, 1).astype(np.float64)
        image += rng.normal(0, 30, image.shape) * (rng.random(image.shape) < 0.03)
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        ours, reference = torch_features(brisque, image)[:18], opencv_features(image)[:18]
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-9, err_msg=f"trial {trial}")


def test_constant_image_gives_opencv_nan_pattern(brisque):
    """A constant image has no negative and no positive MSCN values: OpenCV returns NaN
    variances/means and the last grid shape; so must we."""
    image = np.full((32, 40, 3), 77, np.uint8)
    np.testing.assert_allclose(torch_features(brisque, image), opencv_features(image), rtol=1e-6, equal_nan=True)


def test_batch_equals_single_calls(brisque):
    """A batch of 3 images of one size gives the rows of 3 single-image calls."""
    rng = np.random.default_rng(3)
    images = [np.clip(rng.normal(128, 40, (45, 61, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    images[1][:20, :30] = 200  # a flat corner in one image only
    batch = torch.cat([to_pixel_values(image) for image in images])
    together = brisque(batch)
    separately = torch.cat([brisque(batch[i : i + 1]) for i in range(3)])
    assert together.shape == (3, FEATURE_DIM)
    torch.testing.assert_close(together, separately, rtol=1e-6, atol=1e-9)
    assert not torch.allclose(together[0], together[1])


def test_compiled_path_sums_equal_eager(monkeypatch):
    """While compiling or exporting, the five maps' moment sums run on one stacked (B, 5, H, W) buffer (inductor
    would otherwise recompute the MSCN map inside each map's sums); run eagerly, that path gives the eager
    path's sums bit for bit, per-map pixel count included, on two images, one with a flat corner."""
    from quarf_hf.models import brisque as brisque_module

    rng = np.random.default_rng(4)
    images = [np.clip(rng.normal(128, 40, (45, 61, 3)), 0, 255).astype(np.uint8) for _ in range(2)]
    images[1][:20, :30] = 200
    gray = brisque_module._opencv_gray(torch.cat([to_pixel_values(image) for image in images]))
    eager = brisque_module._scale_sums(gray)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    stacked = brisque_module._scale_sums(gray)
    assert eager.shape == stacked.shape == (2, 5, 6) and bool((eager[..., 5] == 45 * 61).all())
    assert torch.equal(stacked, eager)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_dtypes(brisque, dtype):
    """Output dtype follows the input; float64 and float16 inputs of 8-bit images give the
    float32 features (8-bit levels survive both), up to the output's precision."""
    image = generated_images()["gradient 64x80"]
    reference = brisque(to_pixel_values(image))
    out = brisque(to_pixel_values(image).to(dtype))
    assert out.dtype == dtype and out.shape == (1, FEATURE_DIM)
    tolerance = 1e-6 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(out.float(), reference, rtol=tolerance, atol=1e-6)


def test_input_requiring_grad_and_channels_last(brisque):
    """An input that requires grad, or is stored channels-last (as from an HWC array), gives
    the same features; the output carries no graph (the features are not differentiable)."""
    x = to_pixel_values(generated_images()["gradient 97x131"])
    reference = brisque(x)
    with_grad = brisque(x.clone().requires_grad_(True))
    assert not with_grad.requires_grad
    channels_last = brisque(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(with_grad, reference, rtol=0, atol=0)
    torch.testing.assert_close(channels_last, reference, rtol=0, atol=0)


def test_module_has_no_state_and_survives_casting(brisque):
    """No parameters or state-dict entries; casting the module (model.half()) changes nothing."""
    module = BrisqueFeatures()
    assert module.feature_dim == FEATURE_DIM == 36
    assert list(module.parameters()) == [] and module.state_dict() == {}
    x = to_pixel_values(generated_images()["texture 33x47"])
    before = module(x)
    module.to(torch.float16)
    torch.testing.assert_close(module(x), before, rtol=0, atol=0)


def test_fused_add_check(monkeypatch):
    """The blur relies on torch.add(alpha=k) rounding once (as OpenCV's FMA filter); this CPU
    does so, and where it does not, construction warns (once, not on every call)."""
    from quarf_hf.models import brisque as brisque_module

    assert brisque_module._add_is_fused(torch.device("cpu"))
    monkeypatch.setattr(brisque_module, "_add_is_fused", lambda device: False)
    x = to_pixel_values(generated_images()["texture 33x47"])
    with pytest.warns(UserWarning, match="not a fused multiply-add on cpu"):
        module = BrisqueFeatures()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(brisque):
    """The same batch on CUDA gives the CPU features and stays on the device."""
    images = generated_images()
    x = torch.cat([to_pixel_values(images[f"{kind} 97x131"]) for kind in ("gradient", "uniform", "clipped")])
    on_gpu = brisque(x.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), brisque(x), rtol=1e-4, atol=1e-6)


GOOD = torch.rand(2, 3, 20, 20)


@pytest.mark.parametrize(
    "bad, error, fragments",
    [
        (GOOD.numpy(), TypeError, ["pixel_values", "torch.Tensor", "ndarray"]),
        ((GOOD * 255).to(torch.uint8), TypeError, ["pixel_values", "floating", "torch.uint8"]),
        (GOOD[0], ValueError, ["pixel_values", "4 dims", "(3, 20, 20)"]),
        (GOOD[:, :2], ValueError, ["pixel_values", "1 or 3 channels", "(2, 2, 20, 20)"]),
        (torch.rand(2, 4, 20, 20), ValueError, ["pixel_values", "1 or 3 channels", "(2, 4, 20, 20)"]),
        (GOOD[:, :, : MIN_SIZE - 1], ValueError, ["pixel_values", f">= {MIN_SIZE}", f"(2, 3, {MIN_SIZE - 1}, 20)"]),
        (GOOD[:, :, :, : MIN_SIZE - 1], ValueError, ["pixel_values", f">= {MIN_SIZE}", f"(2, 3, 20, {MIN_SIZE - 1})"]),
        (GOOD[:0], ValueError, ["pixel_values", "B >= 1", "(0, 3, 20, 20)"]),
        (GOOD.clone().index_fill_(2, torch.tensor([3]), float("nan")), ValueError, ["pixel_values", "finite", "found NaN"]),
        (GOOD.clone().index_fill_(2, torch.tensor([3]), float("inf")), ValueError, ["pixel_values", "finite", "found +inf"]),
        (GOOD * 255, ValueError, ["pixel_values", "[0, 1]", "max"]),
        (GOOD - 0.5, ValueError, ["pixel_values", "[0, 1]", "min"]),
    ],
)
def test_bad_input_is_rejected(brisque, bad, error, fragments):
    """Each malformed input raises the right error naming the argument, expected and found."""
    with pytest.raises(error) as caught:
        brisque(bad)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"

"""quarf_hf.degradations: corruption registry, ``degrade``, ``RandomDegradation``, gallery command."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quarf_hf.degradations import CORRUPTIONS, STOCHASTIC, RandomDegradation, degrade
from quarf_hf.degradations.gallery import HEADER_HEIGHT, LABEL_WIDTH, load_resized, make_gallery, psnr, psnr_table
from quarf_hf.degradations.registry import (check_corruptions, check_degradation, check_severities, parse_corruptions,
                                            parse_severities)
from quarf_hf.evaluation import evaluate_model
from quarf_hf.training import TrainConfig

NATURAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "natural-images"
NAMES = list(CORRUPTIONS)
REQUIRED = [
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "gaussian_blur", "motion_blur",
    "jpeg_compression", "pixelate", "contrast", "brightness", "low_light", "fog", "rain", "raindrops",
]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def synthetic_images(b: int = 4, size: int = 96, seed: int = 0) -> torch.Tensor:
    """Colourful test images from a seed: smooth gradients, a sinusoidal texture and hard-edged
    rectangles, so that blur, noise, tone and compression kinds all have something to change."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    out = []
    for _ in range(b):
        c0, c1 = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
        img = 0.15 + 0.5 * (c0 * xx + c1 * yy) / 2
        freq = 8 + 16 * torch.rand(2, generator=g)
        img = img + 0.12 * torch.sin(freq[0] * math.pi * xx) * torch.cos(freq[1] * math.pi * yy)
        for _ in range(3):
            y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
            h, w = torch.randint(size // 8, size // 2, (2,), generator=g).tolist()
            img[:, y0 : y0 + h, x0 : x0 + w] = torch.rand(3, 1, 1, generator=g)
        img = img + 0.03 * torch.rand(3, size, size, generator=g)  # fine texture
        out.append(img.clamp(0.02, 0.98))
    return torch.stack(out)


@pytest.fixture(scope="module")
def generated():
    return synthetic_images()


@pytest.fixture(scope="module")
def photos():
    files = sorted(NATURAL.glob("*.png")) if NATURAL.is_dir() else []
    if not files:  # the built-in photographs (quarf_hf/data/photos.py) ship with the dependencies
        from quarf_hf.data.photos import photo_names, photo_path

        files = [photo_path(name) for name in photo_names()]
    # short side 128, centre crop: fast and still real image statistics
    imgs = []
    for f in files:
        x = load_resized(f, 128)
        h, w = x.shape[-2:]
        top, left = (h - 128) // 2, (w - 128) // 2
        imgs.append(x[..., top : top + 128, left : left + 128])
    return torch.cat(imgs)


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


# ---------------------------------------------------------------- registry
def test_registry_has_required_kinds():
    """The registry holds every required name (REQUIRED), at least 15 kinds, all callable."""
    missing = [n for n in REQUIRED if n not in CORRUPTIONS]
    assert not missing
    assert len(CORRUPTIONS) >= 15
    assert all(callable(f) for f in CORRUPTIONS.values())
    assert STOCHASTIC <= set(CORRUPTIONS)


# ---------------------------------------------------------------- calibration
def _assert_strictly_decreasing(table, margin=0.1):
    bad = {k: [round(v, 2) for v in row] for k, row in table.items() if not all(a - b > margin for a, b in zip(row, row[1:]))}
    assert not bad, f"mean PSNR not strictly decreasing with severity: {bad}"


def test_severity_monotone_on_generated_images(generated):
    """Mean PSNR to the clean generated images falls by > 0.1 dB from each severity to the next, every kind."""
    table = psnr_table(generated, seed=0)
    assert list(table) == NAMES and all(len(row) == 5 for row in table.values())
    _assert_strictly_decreasing(table)
    # and every kind really degrades at severity 1 (no kind is a no-op)
    assert all(row[0] < 60 for row in table.values()), table


def test_severity_monotone_on_natural_photos(photos):
    """Same strict decrease of mean PSNR with severity, on real photos (128 px crops): the shared
    natural-images folder where there is one, else the built-in photographs."""
    _assert_strictly_decreasing(psnr_table(photos, seed=1))


def test_psnr_table_matches_direct_computation(generated):
    """psnr_table's entry equals the PSNR computed here from degrade with the same seed."""
    table = psnr_table(generated[:2], seed=3, names=["fog"], severities=[2])
    direct = psnr(degrade(generated[:2], "fog", 2, gen(3)), generated[:2]).mean().item()
    assert table == {"fog": [pytest.approx(direct, abs=1e-5)]}


# ---------------------------------------------------------------- determinism and independence
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_different_seed_differs(name, generated):
    """Same generator seed -> bit-identical output; a different seed changes random kinds and
    leaves deterministic ones unchanged."""
    x = generated[:2]
    a = degrade(x, name, 3, gen(0))
    assert torch.equal(a, degrade(x, name, 3, gen(0)))
    other = degrade(x, name, 3, gen(1))
    if name in STOCHASTIC:
        assert not torch.equal(a, other)
    else:
        assert torch.equal(a, other)


def test_global_rng_used_when_no_generator(generated):
    """generator=None draws from torch's global RNG: reseeding it reproduces the output."""
    torch.manual_seed(123)
    a = degrade(generated[:1], "gaussian_noise", 2)
    torch.manual_seed(123)
    b = degrade(generated[:1], "gaussian_noise", 2)
    c = degrade(generated[:1], "gaussian_noise", 2)
    assert torch.equal(a, b) and not torch.equal(b, c)


@pytest.mark.parametrize("name", NAMES)
def test_each_image_gets_its_own_randomness(name, generated):
    """Two copies of one image in a batch: different results for random kinds, identical for
    deterministic ones (and the same as degrading the image alone)."""
    x = generated[:1].repeat(2, 1, 1, 1)
    y = degrade(x, name, 3, gen(0))
    if name in STOCHASTIC:
        assert not torch.equal(y[0], y[1])
    else:
        assert torch.equal(y[0], y[1])
        torch.testing.assert_close(y[:1], degrade(generated[:1], name, 3, gen(5)), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- shape, dtype, device, range
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_shape_dtype_device_and_range_preserved(dtype, device):
    """Every kind returns the input's shape, dtype and device with finite values in [0, 1];
    odd sizes (not multiples of 8 or 16) included."""
    x = synthetic_images(2, 40)[..., :37, :].to(device=device, dtype=dtype)
    for name in NAMES:
        for severity in (1, 5):
            y = degrade(x, name, severity, gen(0, device))
            assert y.shape == x.shape and y.dtype == dtype and y.device == x.device, name
            assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1, name


def test_empty_batch():
    """A batch of zero images comes back empty with the same shape."""
    x = torch.zeros(0, 3, 16, 16)
    assert degrade(x, "rain", 2).shape == x.shape


# ---------------------------------------------------------------- input validation
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"name": "snowstorm"}, ValueError, "known: gaussian_noise"),
        ({"name": 3}, TypeError, "name"),
        ({"severity": 0}, ValueError, "severity.*from 1 to 5.*found 0"),
        ({"severity": 6}, ValueError, "severity.*found 6"),
        ({"severity": 2.0}, TypeError, r"severity.*integer.*found 2\.0"),
        ({"severity": True}, TypeError, "severity"),
        ({"severity": "3"}, TypeError, "severity"),
        ({"images": torch.rand(3, 8, 8)}, ValueError, r"images.*4 dimensions.*\(3, 8, 8\)"),
        ({"images": torch.rand(1, 1, 8, 8)}, ValueError, r"images.*3 channels.*\(1, 1, 8, 8\)"),
        ({"images": torch.zeros(1, 3, 8, 8, dtype=torch.uint8)}, TypeError, "images.*floating.*uint8"),
        ({"images": np.zeros((1, 3, 8, 8), np.float32)}, TypeError, "images.*ndarray"),
        ({"images": torch.full((1, 3, 8, 8), float("nan"))}, ValueError, "images.*NaN"),
        ({"images": torch.full((1, 3, 8, 8), float("inf"))}, ValueError, "images.*inf"),
        ({"images": torch.full((1, 3, 8, 8), -0.5)}, ValueError, r"images.*\[0, 1\].*-0.5"),
        ({"generator": 42}, TypeError, "generator.*int"),
    ],
)
def test_bad_input_rejected_before_work(kwargs, error, match, monkeypatch):
    """Each bad argument raises the named error with the argument, expected and found value,
    and no corruption function runs (a spy in the registry stays uncalled)."""
    calls = []
    monkeypatch.setitem(CORRUPTIONS, "fog", lambda *a: calls.append(a))
    args = {"images": torch.rand(1, 3, 8, 8), "name": "fog", "severity": 2, "generator": None} | kwargs
    with pytest.raises(error, match=match):
        degrade(**args)
    assert calls == []


def test_generator_on_other_device_type_rejected():
    """A CPU generator with images on another device type is refused before any value is read
    (meta tensors have no values, so reading them would fail differently)."""
    x = torch.zeros(1, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="generator.*'meta'.*found one on 'cpu'"):
        degrade(x, "gaussian_noise", 1, gen(0))


# ---------------------------------------------------------------- JPEG against PIL
def _pil_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    im = Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)  # PIL default: 4:2:0 subsampling, standard tables
    buf.seek(0)
    return torch.from_numpy(np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize("severity, quality", [(1, 25), (3, 15), (5, 7)])
def test_jpeg_matches_pil_encoder(severity, quality, photos):
    """Our batched JPEG vs PIL's libjpeg at the same quality on real photos: PSNR to the clean
    image within 0.5 dB of PIL's, and the two decoded images within 35 dB of each other."""
    x = (photos[:3] * 255).round() / 255  # 8-bit input, as PIL sees it
    ours = degrade(x, "jpeg_compression", severity)
    for i in range(x.shape[0]):
        ref = _pil_jpeg(x[i : i + 1], quality)
        ours_db, pil_db = psnr(ours[i : i + 1], x[i : i + 1]).item(), psnr(ref, x[i : i + 1]).item()
        assert abs(ours_db - pil_db) < 0.5, (i, ours_db, pil_db)
        assert psnr(ours[i : i + 1], ref).item() > 35


def test_jpeg_is_blocky_and_8bit(generated):
    """JPEG output sits on the 8-bit grid and has more error at 8x8 block borders than inside."""
    y = degrade(generated, "jpeg_compression", 5)
    assert torch.equal(y, (y * 255).round() / 255)
    # horizontal steps across block borders (columns 7|8, 15|16, ...) vs inside blocks
    diff = (y[..., 1:] - y[..., :-1]).abs() - (generated[..., 1:] - generated[..., :-1]).abs()
    border = diff[..., 7::8].abs().mean()
    inside = diff[..., 3::8].abs().mean()
    assert border > inside


# ---------------------------------------------------------------- RandomDegradation
def test_random_degradation_mixes_kinds_in_a_batch(generated):
    """With p=1 a batch of 32 uses several kinds; each image equals degrading it directly with
    its planned kind and severity for deterministic kinds, and every image is changed."""
    aug = RandomDegradation(p=1.0)
    x = synthetic_images(32, 32, seed=1)
    plan = aug.plan(32, gen(7))
    y = aug(x, gen(7))
    assert None not in plan and len({name for name, _ in plan}) >= 5
    assert len({s for _, s in plan}) >= 3
    for i, (name, severity) in enumerate(plan):
        assert not torch.equal(y[i], x[i]), (i, name, severity)
        if name not in STOCHASTIC:
            torch.testing.assert_close(y[i : i + 1], degrade(x[i : i + 1], name, severity), atol=1e-5, rtol=0)


def test_random_degradation_p0_identity_and_p_half_partial():
    """p=0 returns the input values unchanged; p=0.5 over 64 images changes between 20 and 44."""
    x = synthetic_images(64, 16, seed=2)
    assert torch.equal(RandomDegradation(p=0.0)(x, gen(0)), x)
    y = RandomDegradation(p=0.5)(x, gen(0))
    changed = int((y != x).flatten(1).any(1).sum())
    assert 20 <= changed <= 44, changed


def test_random_degradation_deterministic_by_generator():
    """Same generator seed -> identical batch; different seed -> different batch."""
    x = synthetic_images(8, 24, seed=3)
    aug = RandomDegradation(names=["gaussian_noise", "fog", "pixelate"], severities=[2, 4], p=0.8)
    a = aug(x, gen(11))
    assert torch.equal(a, aug(x, gen(11)))
    assert not torch.equal(a, aug(x, gen(12)))


def test_random_degradation_respects_names_and_severities():
    """Only the named kinds and the given severity range are drawn; dtype is kept."""
    aug = RandomDegradation(names=["contrast", "rain"], severities=(2, 3), p=1.0)
    plan = aug.plan(200, gen(0))
    assert {n for n, _ in plan} == {"contrast", "rain"} and {s for _, s in plan} == {2, 3}
    x = synthetic_images(4, 16).to(torch.bfloat16)
    assert aug(x, gen(0)).dtype == torch.bfloat16


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"names": ["fog", "hail"]}, ValueError, "unknown corruption 'hail'"),
        ({"names": []}, ValueError, "names"),
        ({"severities": (0, 5)}, ValueError, "severity.*found 0"),
        ({"severities": (4, 2)}, ValueError, r"severities.*low <= high.*\(4, 2\)"),
        ({"severities": []}, ValueError, "severities"),
        ({"severities": [1, 7]}, ValueError, "severity.*found 7"),
        ({"severities": 2.5}, TypeError, "severities"),
        ({"p": 1.5}, ValueError, "p.*1.5"),
        ({"p": "half"}, ValueError, "p: expected a finite number, found .half."),
    ],
)
def test_random_degradation_validates_constructor(kwargs, error, match):
    """Bad constructor arguments raise with the argument name and the value found."""
    with pytest.raises(error, match=match):
        RandomDegradation(**kwargs)


def test_random_degradation_validates_images():
    """Calling with a non-image tensor raises the same errors as degrade."""
    with pytest.raises(ValueError, match="3 channels"):
        RandomDegradation(p=1.0)(torch.rand(2, 4, 8, 8))


# ---------------------------------------------------------------- gallery
def _write_png(path: Path, h: int, w: int) -> None:
    img = synthetic_images(1, max(h, w))[0, :, :h, :w]
    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)


def test_gallery_command_end_to_end(tmp_path, capsys):
    """`quarf-hf degradations` writes a PNG of (label + 6 cells) x (header + rows) pixels with the
    image resized to --size on its short side; clean and severity-5 cells differ; no temp file left."""
    from quarf_hf.cli import main

    src, out = tmp_path / "in.png", tmp_path / "sub" / "grid.png"
    _write_png(src, 48, 64)
    rc = main(["degradations", "--image", str(src), "--out", str(out), "--size", "32", "--names", "fog,gaussian_noise", "--seed", "3"])
    assert rc == 0
    with Image.open(out) as im:
        assert im.format == "PNG"
        w = round(64 * 32 / 48)
        assert im.size == (LABEL_WIDTH + 6 * w, HEADER_HEIGHT + 2 * 32)
        arr = np.asarray(im.convert("RGB"), np.float32)
    clean = arr[HEADER_HEIGHT : HEADER_HEIGHT + 32, LABEL_WIDTH : LABEL_WIDTH + w]
    worst = arr[HEADER_HEIGHT : HEADER_HEIGHT + 32, LABEL_WIDTH + 5 * w : LABEL_WIDTH + 6 * w]
    assert np.abs(clean - worst).mean() > 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png"]

    # missing image: one-line error, exit code 2, nothing written
    missing = tmp_path / "nope.png"
    assert main(["degradations", "--image", str(missing), "--out", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

    # unknown kind: named in the error
    assert main(["degradations", "--image", str(src), "--out", str(tmp_path / "y.png"), "--names", "hail"]) == 2
    assert "hail" in capsys.readouterr().err and not (tmp_path / "y.png").exists()


def test_make_gallery_from_tensor_is_reproducible(tmp_path):
    """make_gallery accepts a tensor; the same seed writes the same pixels, another seed differs."""
    x = synthetic_images(1, 24)[0]
    a, b, c = (make_gallery(x, tmp_path / f"{k}.png", names=["rain"], seed=s) for k, s in (("a", 0), ("b", 0), ("c", 1)))
    arrs = [np.asarray(Image.open(p)) for p in (a, b, c)]
    assert arrs[0].shape == (HEADER_HEIGHT + 24, LABEL_WIDTH + 6 * 24, 3)
    assert np.array_equal(arrs[0], arrs[1]) and not np.array_equal(arrs[0], arrs[2])


def test_make_gallery_rejects_bad_arguments(tmp_path):
    """Non-PNG output paths, bad sizes and unreadable images raise ValueError naming the argument."""
    x = synthetic_images(1, 16)[0]
    with pytest.raises(ValueError, match="out_path.*png"):
        make_gallery(x, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="size"):
        make_gallery(x, tmp_path / "g.png", size=0)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="image.*cannot read"):
        make_gallery(bad, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


# ---------------------------------------------------------------- the size rule (reference_size)
def _downscale2(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(x, 2)


def test_reference_size_224_gives_todays_output_at_224_px():
    """At 224 px, reference_size=224 gives bit for bit what no reference size gives, for every kind
    (the tables' pixel values are ImageNet-C's at 224 px)."""
    x = synthetic_images(1, 224, seed=5)
    for name in NAMES:
        for severity in (1, 5):
            today = degrade(x, name, severity, gen(7))
            assert torch.equal(degrade(x, name, severity, gen(7), reference_size=224), today), (name, severity)
            assert torch.equal(degrade(x, name, severity, gen(7), reference_size=None), today), (name, severity)


def test_reference_size_changes_only_the_spatial_kinds_off_224():
    """At 112 px, reference_size=224 halves every size in pixels: the SPATIAL kinds change (less
    degradation, higher PSNR), the others (per pixel, codec blocks, fractions of the image) do not."""
    from quarf_hf.degradations import SPATIAL

    x = synthetic_images(2, 112, seed=6)
    assert SPATIAL < set(NAMES) and {"gaussian_blur", "motion_blur", "pixelate", "rain"} <= SPATIAL
    for name in NAMES:
        today = degrade(x, name, 3, gen(1))
        scaled = degrade(x, name, 3, gen(1), reference_size=224)
        if name in SPATIAL:
            assert psnr(scaled, x).mean() > psnr(today, x).mean() + 0.5, name
        else:
            assert torch.equal(scaled, today), name


@pytest.mark.parametrize("size", [64, 128, 256])
def test_scaled_severities_monotone_at_several_sizes(size):
    """With reference_size=224, mean PSNR never rises with severity, at 64, 128 and 256 px, every kind;
    from 128 px up it falls by > 0.1 dB at each step (as at the reference), and at 64 px severity 5 is
    still far below severity 1. (At 64 px the smallest sizes fall under one pixel: pixelate's 2- and
    3-pixel blocks become 0.6 and 0.9 pixels, which leave the image as it is.)"""
    from quarf_hf.degradations import SPATIAL

    x = synthetic_images(3, size, seed=size)
    table = psnr_table(x, seed=0, names=sorted(SPATIAL), reference_size=224)
    if size >= 128:
        _assert_strictly_decreasing(table)
    rising = {k: [round(v, 2) for v in row] for k, row in table.items() if any(b > a + 1e-3 for a, b in zip(row, row[1:]))}
    assert not rising, f"mean PSNR rises with severity at {size} px: {rising}"
    assert all(row[0] - row[-1] > 3 for row in table.values()), table


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus_blur", "motion_blur", "pixelate"])
def test_scaled_448_px_matches_224_px_of_its_downscale(name):
    """A 448-px image degraded with reference_size=224, then halved, matches the halved image degraded
    at 224 px (> 40 dB, where the unscaled 448-px degradation misses by far)."""
    big = synthetic_images(2, 448, seed=2)
    small = _downscale2(big)
    for severity in (1, 3, 5):
        target = degrade(small, name, severity, gen(4), reference_size=224)
        scaled = psnr(_downscale2(degrade(big, name, severity, gen(4), reference_size=224)), target)
        unscaled = psnr(_downscale2(degrade(big, name, severity, gen(4))), target)
        assert scaled.min() > 40, (severity, scaled)
        assert scaled.min() > unscaled.max() + 10, (severity, scaled, unscaled)


def test_random_degradation_and_gallery_pass_reference_size(tmp_path):
    """RandomDegradation and the gallery degrade with the reference size they are given."""
    x = synthetic_images(2, 96, seed=3)
    aug = RandomDegradation(names=["gaussian_blur"], severities=4, p=1.0, reference_size=224)
    assert "reference_size=224" in repr(aug)
    out = aug(x, gen(0))
    assert torch.equal(out, degrade(x, "gaussian_blur", 4, reference_size=224))
    assert not torch.equal(out, degrade(x, "gaussian_blur", 4))

    cell = slice(HEADER_HEIGHT, HEADER_HEIGHT + 96), slice(LABEL_WIDTH + 96, LABEL_WIDTH + 192)  # severity 1
    grids = {ref: np.asarray(Image.open(make_gallery(x[0], tmp_path / f"{ref}.png", names=["pixelate"], severities=[1],
                                                     reference_size=ref)), np.float32) for ref in (None, 224)}
    # 2-pixel blocks at 224 px are 0.86 pixels at 96: the scaled cell is the clean image
    clean = (x[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8).astype(np.float32)
    assert np.array_equal(grids[224][cell], clean) and not np.array_equal(grids[None][cell], clean)


@pytest.mark.parametrize("bad", [0, -224, 2.5, True, "224"])
def test_bad_reference_size_rejected_by_every_entry_point(bad, tmp_path):
    """A reference size that is not None or a positive int: one line naming reference_size, before work."""
    x = synthetic_images(1, 16)
    calls = [
        lambda: degrade(x, "fog", 1, reference_size=bad),
        lambda: RandomDegradation(reference_size=bad),
        lambda: psnr_table(x, names=["fog"], reference_size=bad),
        lambda: make_gallery(x[0], tmp_path / "g.png", names=["fog"], reference_size=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"^reference_size: expected None \(no scaling\) or a positive int"):
            call()
    assert not (tmp_path / "g.png").exists()


# ----------------------------------------------------------------------------------------------
# Corruption names and severities are checked in one place (quarf_hf/degradations/registry.py): every
# entry point reports the same mistake the same way, under its own argument name.


TRAIN = {"data": {"train": {"type": "quarf-shapes"}}}


def error_text(call) -> str:
    with pytest.raises((TypeError, ValueError)) as caught:
        call()
    return str(caught.value)


def test_a_misspelt_corruption_reads_the_same_from_every_entry_point():
    texts = {
        "name": error_text(lambda: degrade(torch.rand(1, 3, 8, 8), "fgo", 2)),
        "names": error_text(lambda: RandomDegradation(names=["fog", "fgo"])),
        "corruptions": error_text(lambda: evaluate_model(None, [0], corruptions=["fgo"], progress=False)),
        "evaluation.corruptions": error_text(lambda: TrainConfig.from_dict({**TRAIN, "evaluation": {"corruptions": ["fgo"]}})),
        "--corruptions": error_text(lambda: parse_corruptions("fog,fgo")),
        "--corruption": error_text(lambda: check_degradation("fgo", None, arguments=("--corruption", "--severity"))),
    }
    for argument, text in texts.items():
        assert text == f"{argument}: unknown corruption 'fgo'; known: {', '.join(CORRUPTIONS)}"


def test_a_bad_severity_reads_the_same_from_every_entry_point():
    texts = {
        "severity": error_text(lambda: degrade(torch.rand(1, 3, 8, 8), "fog", 7)),
        "severities": error_text(lambda: evaluate_model(None, [0], severities=[1, 7], progress=False)),
        "evaluation.severities": error_text(lambda: TrainConfig.from_dict({**TRAIN, "evaluation": {"severities": [7]}})),
        "--severities": error_text(lambda: parse_severities("2,7")),
        "--severity": error_text(lambda: check_degradation("fog", 7, arguments=("--corruption", "--severity"))),
    }
    for argument, text in texts.items():
        assert text == f"{argument}: expected an integer from 1 to 5, found 7"


def test_accepted_forms():
    assert check_corruptions(None) == check_corruptions("all") == list(CORRUPTIONS)
    assert check_corruptions(["fog", "rain", "fog"]) == ["fog", "rain"]  # duplicates dropped, order kept
    assert parse_corruptions("all") == sorted(CORRUPTIONS)  # the command's order: by name
    assert check_severities(3) == [3] and check_severities([5, 1, 5]) == [1, 5]
    assert parse_severities("1-2,5") == [1, 2, 5] and parse_severities("4") == [4]
    assert check_degradation(None, None) == (None, None) and check_degradation("fog", None) == ("fog", 3)
    with pytest.raises(ValueError, match="severity: only meaningful with corruption"):
        check_degradation(None, 2)
    with pytest.raises(ValueError, match="corruptions: expected at least one corruption name"):
        check_corruptions([])
    assert check_corruptions([], allow_empty=True) == []
    with pytest.raises(ValueError, match="augmentation.severities: expected an integer from 1 to 5, found '3'"):
        TrainConfig.from_dict({**TRAIN, "augmentation": {"severities": ["3"]}})  # config errors stay ValueErrors

"""The Gradio Space, served for real on 127.0.0.1 and driven the ways a visitor meets it.

- gradio_client against an in-process server with tiny models built here: output sizes, each
  output compared with an independent computation (degradation, model arg-max + blend, mIoU
  from a numpy confusion matrix, PSNR), every corruption kind, routing that moves with severity,
  bad uploads answered with a message while the worker lives on, 8 concurrent clients equal to
  sequential calls, the sweep, the restoration tab (QuARF and plain side by side, its sweep);
- the image loader on 16-bit grey and RGB / grey / RGBA / JPEG / WebP files against independent conversions;
- `python spaces/quarf-demo/app.py` with no model (the page says how to get one) and
  `quarf-hf space` picking up the demo's folders (and naming a model that fails to load), as
  subprocesses;
- a headless Chromium (Debian's chromium + chromium-driver, through selenium): the page opens on a
  built-in photo and shows it restored with the routing; the restoration sweep; then upload, move
  the slider, wait, screenshot (kept under $QUARF_TEST_ARTIFACTS or tests/artifacts/), and check
  that the components hold content.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from transformers import SegformerConfig, SegformerForSemanticSegmentation  # noqa: E402

from quarf_hf import (  # noqa: E402
    QuarfRestorationConfig,
    QuarfRestorationModel,
    QuarfSegformerConfig,
    QuarfSegformerForSemanticSegmentation,
)
from quarf_hf.data.shapes import CLASS_NAMES  # noqa: E402
from quarf_hf.degradations import CORRUPTIONS, degrade  # noqa: E402
from quarf_hf.evaluation.runner import degradation_seed  # noqa: E402
from quarf_hf.space.app import build_app, example_rows  # noqa: E402
from quarf_hf.space.images import MAX_SIDE, load_upload  # noqa: E402
from quarf_hf.space.models import SpaceModels, prepare  # noqa: E402
from tiny_models import save_demo_restoration, segformer_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = segformer_config(num_labels=5, id2label=dict(enumerate(CLASS_NAMES[:5])),
                        label2id={n: i for i, n in enumerate(CLASS_NAMES[:5])})
EXPERTS = [[3, 1], [3, 2], [3, 4], [3, 8]]
SUBPROCESS_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                  "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_models(seed: int = 0, folder: Path | None = None) -> dict:
    """The tiny segmenters and (saved under ``folder`` when given, as `quarf-hf demo` lays them out)
    the two restoration models."""
    torch.manual_seed(seed)
    quarf = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        **TINY, quality="brisque", quarf={"num_groups": 4, "experts": EXPERTS, "mode": "soft"}))
    # The router's logits depend on the quality features: a larger weight makes that dependence
    # show in the weights (randomly initialised, it is small but nonzero).
    with torch.no_grad():
        quarf.segformer.quarf.router.route_linear.weight.mul_(20)
    baseline = SegformerForSemanticSegmentation(SegformerConfig(**TINY))
    if folder is None:
        restoration = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], quality="brisque"))
        return {"quarf": quarf.eval(), "baseline": baseline.eval(), "restoration": restoration.eval()}
    return {"quarf": quarf.eval(), "baseline": baseline.eval(), **save_demo_restoration(folder, seed)}


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def png_array(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(folder=tmp_path_factory.mktemp("restoration_models"))


@pytest.fixture(scope="module")
def server(models, tmp_path_factory, cli_servers):
    """The page on 127.0.0.1 (a free port) with the tiny models; closed after the module.

    (It asks for ``cli_servers`` only so that those subprocesses start first and boot meanwhile.)"""
    space_models = SpaceModels(quarf=prepare("quarf", "tiny QuARF", models["quarf"]),
                               baseline=prepare("baseline", "tiny SegFormer", models["baseline"]),
                               restoration=prepare("restoration", "tiny restoration", models["restoration"]),
                               plain_restoration=prepare("plain_restoration", "tiny plain", models["plain_restoration"]))
    app = build_app(space_models, examples_dir=tmp_path_factory.mktemp("examples"))
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield url
    app.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (48, 70, 3), dtype=np.uint8)
    scene[8:30, 10:40] = (200, 40, 40)
    return {"scene": write_png(folder / "scene.png", scene), "folder": folder}


def segment(client, path, corruption, severity):
    return client.predict(handle_file(str(path)), corruption, severity, None, api_name="/segment")


def reference_prediction(model, image: torch.Tensor) -> np.ndarray:
    """Arg-max classes at the image size, computed here: ImageNet normalisation, bilinear upsampling."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(pixel_values=(image - mean) / std).logits
    return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False).argmax(1)[0].numpy()


def reference_miou(prediction: np.ndarray, reference: np.ndarray, n: int) -> float:
    confusion = np.bincount(reference.ravel() * n + prediction.ravel(), minlength=n * n).reshape(n, n)
    tp, union = np.diag(confusion), confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    present = union > 0
    return float((tp[present] / union[present]).mean())


def test_outputs_match_input_and_independent_computation(client, images, models):
    """Degraded input = degrade() seeded as `evaluate` seeds image 0; overlays = the model's own
    arg-max blended 50/50 with the VOC palette; mIoU = a numpy confusion matrix against the clean
    prediction; all at the upload's size."""
    from quarf_hf.prediction import palette

    degraded_path, quarf_path, baseline_path, legend, quarf_miou, baseline_miou, routing, notes, details = segment(
        client, images["scene"], "gaussian_noise", 4)
    original = torch.from_numpy(png_array(images["scene"]).astype(np.float32) / 255).permute(2, 0, 1)[None]
    generator = torch.Generator().manual_seed(degradation_seed(0, "gaussian_noise", 4, 0))
    expected = degrade(original, "gaussian_noise", 4, generator=generator)
    expected_u8 = (expected[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    for path in (degraded_path, quarf_path, baseline_path):
        assert Image.open(path).size == (70, 48)
    assert np.array_equal(png_array(degraded_path), expected_u8)

    degraded = torch.from_numpy(expected_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    for name, path, miou in (("quarf", quarf_path, quarf_miou), ("baseline", baseline_path, baseline_miou)):
        clean_mask = reference_prediction(models[name], original)
        mask = reference_prediction(models[name], expected)
        blend = 0.5 * degraded[0].permute(1, 2, 0).numpy() * 255 + 0.5 * palette(5)[mask].astype(np.float32)
        # the page blends the unrounded degraded image: within one grey level of this
        assert np.abs(png_array(path).astype(int) - np.rint(blend).astype(int)).max() <= 1, name
        assert miou == pytest.approx(reference_miou(mask, clean_mask, 5), abs=1e-3), name
    assert "background" in legend or any(n in legend for n in CLASS_NAMES[:5])
    bars = {(g, e): w for g, e, w in routing["data"]}  # the stacked bar chart's table
    quarf_routing = np.array(details["models"]["QuARF"]["routing"])
    labels = details["models"]["QuARF"]["experts"]
    assert len(bars) == 5 * 4  # 4 groups + their mean, x 4 experts
    for e, label in enumerate(labels):
        assert bars[("g2", label)] == pytest.approx(quarf_routing[1, e], abs=1e-6)
        assert bars[("mean", label)] == pytest.approx(quarf_routing[:, e].mean(), abs=1e-6)
    assert "What the router sees" in notes and "BRISQUE" in notes
    assert details["size"] == [70, 48] and len(details["models"]["QuARF"]["routing"]) == 4  # groups
    assert details["models"]["QuARF"]["experts"][3].startswith("RF 17")


def test_every_corruption_kind_runs(client, images):
    clean = png_array(images["scene"])
    for corruption in CORRUPTIONS:
        degraded_path, *_, details = segment(client, images["scene"], corruption, 3)
        degraded = png_array(degraded_path)
        assert degraded.shape == clean.shape, corruption
        assert not np.array_equal(degraded, clean), corruption
        assert details["corruption"] == corruption and 0.0 <= details["models"]["QuARF"]["mIoU_vs_clean"] <= 1.0


def test_routing_moves_with_severity(client, images):
    """The router sees BRISQUE features, which noise moves: severity 5 routes differently from clean."""
    *_, clean = segment(client, images["scene"], "gaussian_noise", 0)
    *_, heavy = segment(client, images["scene"], "gaussian_noise", 5)
    clean_routing = np.array(clean["models"]["QuARF"]["routing"])
    heavy_routing = np.array(heavy["models"]["QuARF"]["routing"])
    assert clean["models"]["QuARF"]["mIoU_vs_clean"] == 1.0
    assert np.allclose(clean_routing.sum(-1), 1, atol=1e-5)
    assert np.abs(heavy_routing - clean_routing).max() > 1e-2
    assert np.allclose(heavy["models"]["QuARF"]["clean_routing"], clean_routing, atol=1e-6)
    assert "routing" not in heavy["models"]["baseline"]  # a plain SegFormer has none


def test_bad_uploads_give_a_message_and_the_worker_lives(client, images):
    folder = images["folder"]
    text = folder / "notes.txt"
    text.write_text("not an image\n")
    tiny = write_png(folder / "dot.png", np.zeros((1, 1, 3), np.uint8))
    strip = write_png(folder / "strip.png", np.full((10, 10000, 3), 128, np.uint8))
    expected = {text: "is not an image", tiny: "found 1x1", strip: "found 10000x10"}
    for path, message in expected.items():
        with pytest.raises(AppError, match=message):
            segment(client, path, "fog", 2)
        degraded_path, *_ = segment(client, images["scene"], "fog", 2)  # the next request is served
        assert Image.open(degraded_path).size == (70, 48)


def test_loader_reads_every_kind_of_image(tmp_path):
    """16-bit grey scaled by 65535 (not clipped at 255), grey, RGBA over white, palette, JPEG and
    WebP (lossless), each against a conversion written here."""
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, (40, 50), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert np.allclose(load_upload(tmp_path / "grey16.png")[0].numpy(), np.broadcast_to(grey16 / 65535.0, (3, 40, 50)), atol=1e-6)

    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.allclose(load_upload(tmp_path / "grey.png")[0].numpy(), np.broadcast_to(grey / 255.0, (3, 40, 50)), atol=1e-6)

    rgba = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    alpha = rgba[..., 3:].astype(np.float64) / 255
    over_white = rgba[..., :3] * alpha + 255 * (1 - alpha)
    assert np.abs(load_upload(tmp_path / "rgba.png")[0].permute(1, 2, 0).numpy() * 255 - over_white).max() <= 1.01

    # 16-bit RGB (48-bit PNG, written by OpenCV, BGR order): Pillow reads it at 8 bits, so within 1/255
    cv2 = pytest.importorskip("cv2")
    rgb16 = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    assert np.abs(load_upload(tmp_path / "rgb16.png")[0].permute(1, 2, 0).numpy() - rgb16 / 65535.0).max() <= 1 / 255 + 1e-6

    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "image.webp", lossless=True)
    assert np.array_equal((load_upload(tmp_path / "image.webp")[0].permute(1, 2, 0).numpy() * 255).round(), rgb)
    Image.fromarray(rgb).save(tmp_path / "image.jpg", quality=95)
    assert load_upload(tmp_path / "image.jpg").shape == (1, 3, 40, 50)


def test_large_upload_is_downscaled_and_the_page_says_so(client, images):
    large = write_png(images["folder"] / "large.png", np.full((900, 1500, 3), 90, np.uint8))
    degraded_path, quarf_path, *_, notes, details = segment(client, large, "contrast", 1)
    assert Image.open(degraded_path).size == Image.open(quarf_path).size == (MAX_SIDE, 614)
    assert details["downscaled"] and "downscaled to 1024x614" in notes


def test_concurrent_clients_get_the_sequential_answers(server, client, images):
    """8 clients x 5 requests at once (the queue computes 2 at a time): every request answered,
    each answer equal to the same request made alone."""
    combos = [(name, 1 + i) for i, name in enumerate(["gaussian_noise", "defocus_blur", "fog", "jpeg_compression", "rain"])]

    def answer(c, combo):
        degraded, quarf, baseline, *_, details = segment(c, images["scene"], *combo)
        return [png_array(degraded), png_array(quarf), png_array(baseline)], details

    sequential = [answer(client, combo) for combo in combos]

    def one_client(j):
        own = Client(server, verbose=False)
        return [(k, answer(own, combos[(j + k) % len(combos)])) for k in range(5)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_client, range(8)))
    assert sum(len(r) for r in results) == 40
    for j, answers in enumerate(results):
        for k, (arrays, details) in answers:
            expected_arrays, expected_details = sequential[(j + k) % len(combos)]
            assert details == expected_details
            assert all(np.array_equal(a, b) for a, b in zip(arrays, expected_arrays))


def test_sweep_and_restoration(client, images, models):
    """Sweep: severity 0 scores mIoU 1 and routes as the single request does. Restoration: the
    restored image is the model's reconstruction, and the PSNR is computed here too."""
    plot, numbers = client.predict(handle_file(str(images["scene"])), "gaussian_noise", None, api_name="/sweep")
    assert Image.open(plot).size[0] > 400
    assert numbers["severities"] == [0, 1, 2, 3, 4, 5]
    for values in numbers["mIoU_vs_clean"].values():
        assert len(values) == 6 and values[0] == 1.0
    *_, details = segment(client, images["scene"], "gaussian_noise", 0)
    clean_mean = np.array(details["models"]["QuARF"]["routing"]).mean(0)
    assert np.allclose(numbers["routing"]["mean_weight"][0], clean_mean, atol=1e-5)

    clean_path, degraded_path, quarf_path, plain_path, text, chart, details = client.predict(
        handle_file(str(images["scene"])), "defocus_blur", 3, "chelsea", api_name="/restore")  # the upload wins
    assert details["image"] == "upload" and details["size"] == [70, 48]
    degraded = torch.from_numpy(png_array(degraded_path).astype(np.float32) / 255).permute(2, 0, 1)[None]
    clean = torch.from_numpy(png_array(clean_path).astype(np.float32) / 255).permute(2, 0, 1)[None]
    generator = torch.Generator().manual_seed(degradation_seed(0, "defocus_blur", 3, 0))
    exact = degrade(clean, "defocus_blur", 3, generator=generator).clamp(0, 1)  # unrounded, as the page has it
    assert np.abs(png_array(degraded_path).astype(int) - (exact[0].permute(1, 2, 0).numpy() * 255).round().astype(int)).max() == 0
    for name, path in (("restoration", quarf_path), ("plain_restoration", plain_path)):
        with torch.no_grad():
            restored = models[name](pixel_values=exact).reconstruction
        assert np.abs(png_array(path).astype(int) - (restored[0].permute(1, 2, 0).numpy() * 255).round().astype(int)).max() <= 1
    psnr = 10 * np.log10(1 / float(((degraded - clean) ** 2).mean()))  # from the 8-bit PNGs: within 0.05 dB
    assert float(text.split("degraded ")[1].split(" dB")[0]) == pytest.approx(psnr, abs=0.05)
    assert details["psnr"]["degraded"] == pytest.approx(psnr, abs=0.05)
    assert len(chart["data"]) == 5 * 4 and "plain" in details["models"] and "routing" not in details["models"]["plain"]

    plot, numbers = client.predict(None, "gaussian_noise", "coffee", api_name="/restore_sweep")  # a built-in photo
    assert Image.open(plot).size[0] > 400 and numbers["severities"] == [0, 1, 2, 3, 4, 5]
    assert set(numbers["psnr"]) == {"degraded", "QuARF-restored", "plain-restored"}
    assert all(len(v) == 6 for v in numbers["psnr"].values()) and numbers["psnr"]["degraded"][0] == 100.0
    weights = np.array(numbers["routing"]["QuARF"]["weights"])  # severities x groups x experts
    assert weights.shape == (6, 4, 4) and np.allclose(weights.sum(-1), 1, atol=1e-5)


def test_examples_include_scenes_and_photos_when_present(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_png(photos / "a.png", np.zeros((40, 40, 3), np.uint8))
    rows = example_rows(tmp_path / "ex", photos)
    assert [Path(r[0]).name for r in rows] == ["quarf-shapes-0.png", "quarf-shapes-1.png", "quarf-shapes-2.png", "a.png"]
    assert all(r[1] in CORRUPTIONS and 0 <= r[2] <= 5 for r in rows)
    assert Image.open(rows[0][0]).size == (128, 128)
    assert len(example_rows(tmp_path / "ex2", tmp_path / "absent")) == 3


def test_space_readme_header():
    text = (ROOT / "spaces" / "quarf-demo" / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py"
    assert (ROOT / "spaces" / "quarf-demo" / header["app_file"]).is_file()
    assert header["license"] == "apache-2.0" and header["title"]
    assert header["suggested_hardware"] == "cpu-basic"
    # No placeholder ids in the metadata (the Hub would link the Space to repos that do not exist).
    assert not any("your-org" in model or "<" in model for model in header.get("models", []))
    assert str(header["sdk_version"]).count(".") == 2


def test_space_command_checks_its_arguments_first(capsys):
    from quarf_hf.cli import main

    assert main(["space", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


# --- subprocesses: the commands a user types --------------------------------------------------------


def start(command: list[str], cwd: Path, env: dict, port: int):
    log = open(cwd / "server.log", "w+")  # a file, not a pipe: a chatty server never blocks on it
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log = log
    return process, port


def wait_for(process, port: int, timeout: float = 180.0) -> dict:
    """Wait until the server's page answers; its config (every component's props) as JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            process.log.seek(0)
            raise AssertionError(f"server exited with {process.returncode}:\n{process.log.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.5)
    process.log.seek(0)
    raise AssertionError(f"server did not answer within {timeout} s:\n{process.log.read()}")


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log.close()


def page_text(config: dict) -> str:
    return json.dumps([c.get("props", {}) for c in config["components"]])


@pytest.fixture(scope="module")
def cli_servers(tmp_path_factory):
    """Two servers started as a user starts them, side by side (their start-up overlaps):
    `python spaces/quarf-demo/app.py` with no model anywhere, and `quarf-hf space` in a folder
    where `quarf-hf demo` ran (tiny models saved in outputs/demo/<arm>/model and
    outputs/demo/restoration/quarf/model) whose plain restoration folder is not a model."""
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("QUARF_MODEL", "BASELINE_MODEL", "RESTORATION_MODEL", "QUARF_DEMO_DIR", "GRADIO_SERVER_PORT")}
    base_env.update(SUBPROCESS_ENV)

    empty = tmp_path_factory.mktemp("no_model")
    port = free_port()
    env = dict(base_env, GRADIO_SERVER_PORT=str(port), QUARF_DEMO_DIR=str(empty / "no-demo-here"))
    app_py = start([sys.executable, str(ROOT / "spaces" / "quarf-demo" / "app.py")], empty, env, port)

    demo = tmp_path_factory.mktemp("demo_ran_here")
    built = tiny_models(folder=demo / "outputs" / "demo")
    for arm, key in (("quarf", "quarf"), ("augmentation", "baseline")):
        built[key].save_pretrained(demo / "outputs" / "demo" / arm / "model")
    broken = demo / "outputs" / "demo" / "restoration" / "plain" / "model"
    shutil.rmtree(broken)
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    port = free_port()
    command = [sys.executable, "-m", "quarf_hf.cli", "space", "--port", str(port)]
    cli = start(command, demo, base_env, port)
    yield {"app_py": app_py, "cli": cli, "folder": empty}
    for process, *_ in (app_py, cli):
        stop(process)


def test_space_app_without_a_model_says_how_to_get_one(cli_servers):
    process, port = cli_servers["app_py"]
    config = wait_for(process, port)
    text = page_text(config)
    assert "No segmentation model is loaded" in text and "quarf-hf demo --quick --task segmentation" in text
    # the page still works: it shows the corruption
    rng = np.random.default_rng(0)
    path = write_png(cli_servers["folder"] / "x.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    degraded, quarf, baseline, *_, notes, _ = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
        handle_file(str(path)), "fog", 3, None, api_name="/segment")
    assert Image.open(degraded).size == (40, 40) and quarf is None and baseline is None
    assert "No segmentation model is loaded" in notes


def test_quarf_hf_space_uses_the_demo_folders_and_names_a_broken_model(cli_servers):
    """`quarf-hf space` in a folder where `quarf-hf demo` ran: QuARF and the augmentation arm load
    from outputs/demo/<arm>/model, the QuARF restoration model from outputs/demo/restoration/quarf/model
    (its tab first); a plain restoration folder that is not a model is named with the reason."""
    process, port = cli_servers["cli"]
    config = wait_for(process, port)
    text = page_text(config)
    assert "outputs/demo/quarf/model" in text and "outputs/demo/augmentation/model" in text
    assert "QuARF restoration: `" in text and "outputs/demo/restoration/quarf/model" in text
    assert "Could not load the plain restoration model" in text and "restoration/plain/model" in text
    assert "No segmentation model" not in text and "No restoration model" not in text
    tabs = [c["props"]["label"] for c in config["components"] if c.get("type") == "tabitem"]
    assert tabs == ["Restoration", "Segmentation"]


# --- a real browser ------------------------------------------------------------------------------------


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return browser, driver


@pytest.mark.skipif(None in chromium_paths(), reason="Debian's chromium and chromium-driver are not installed")
def test_browser_photo_restoration_then_upload_slider_outputs_and_screenshots(server, images):
    """The page opens on the restoration tab with a built-in photo (chelsea, 451x300) restored by
    QuARF and the plain model, each with its PSNR, and QuARF's routing drawn; the restoration sweep;
    then the segmentation tab with an upload and the severity slider."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    artifacts = Path(os.environ.get("QUARF_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(driver, 60, poll_frequency=0.25)

    def image_source(elem_id):
        return driver.execute_script(
            "const i = document.querySelector(arguments[0] + ' img');"
            "return i && i.complete && i.naturalWidth > 0 ? i.src : null;", f"#{elem_id}")

    def natural_width(elem_id):
        return driver.execute_script(f"const i = document.querySelector('#{elem_id} img'); return i ? i.naturalWidth : 0;")

    def drawn_area(elem_id):  # a chart drawn by the browser (vega): a canvas or svg, visible, with area
        return driver.execute_script(
            "const c = document.querySelector(arguments[0] + ' canvas, ' + arguments[0] + ' svg.marks');"
            "if (!c) return 0; const r = c.getBoundingClientRect(); return r.width * r.height;", f"#{elem_id}")

    restored = ("quarf-restore-clean", "quarf-restore-degraded", "quarf-restore-quarf", "quarf-restore-plain")
    try:
        driver.get(server)
        # Opened on the restoration tab and the built-in photo: no click, no upload.
        wait.until(lambda d: all(image_source(elem_id) for elem_id in restored))
        assert "chelsea" in driver.find_element(By.CSS_SELECTOR, "#quarf-photo input").get_attribute("value")
        assert [natural_width(elem_id) for elem_id in restored] == [451] * 4
        wait.until(lambda d: drawn_area("quarf-restore-routing") > 10_000)  # QuARF's routing for this photo
        psnr_line = driver.find_element(By.ID, "quarf-psnr").text
        for shown in ("degraded", "QuARF-restored", "plain-restored"):
            assert f"{shown} " in psnr_line and " dB" in psnr_line.split(shown)[1], shown
        labels = driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=block-label]')).map(e => e.textContent.trim())")
        assert {"QuARF-restored", "plain-restored"} <= set(labels)
        driver.find_element(By.CSS_SELECTOR, "#quarf-restore-sweep-button").click()
        wait.until(lambda d: image_source("quarf-restore-sweep"))
        assert natural_width("quarf-restore-sweep") > 400
        time.sleep(0.5)  # let the last images paint before the screenshot
        driver.save_screenshot(str(artifacts / "space_browser_restoration.png"))
        assert (artifacts / "space_browser_restoration.png").stat().st_size > 20_000

        # The segmentation tab: it ran on the photo too; an upload replaces the photo.
        driver.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Segmentation')]").click()
        photo_answer = wait.until(lambda d: image_source("quarf-quarf"))
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#quarf-input input[type=file]"))
        scene = write_png(images["folder"] / "browser.png", png_array(images["scene"]).repeat(3, 0).repeat(3, 1))
        upload.send_keys(str(scene))
        wait.until(lambda d: natural_width("quarf-degraded") == 210 and image_source("quarf-quarf") not in (None, photo_answer))
        first = image_source("quarf-quarf")  # the upload ran the models
        wait.until(lambda d: "chelsea" not in d.find_element(By.CSS_SELECTOR, "#quarf-photo input").get_attribute("value"))

        slider = driver.find_element(By.CSS_SELECTOR, "#quarf-severity input[type=range]")
        width = slider.size["width"]
        ActionChains(driver).move_to_element_with_offset(slider, width // 2 - 2, 0).click().perform()  # far right: 5
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#quarf-severity input[type=number]").get_attribute("value") == "5")
        wait.until(lambda d: image_source("quarf-quarf") not in (None, first))  # severity 5's answer arrived
        driver.find_element(By.CSS_SELECTOR, "#quarf-sweep-button").click()
        wait.until(lambda d: image_source("quarf-sweep"))
        time.sleep(0.5)  # let the last images paint before the screenshot
        screenshot = artifacts / "space_browser.png"
        driver.save_screenshot(str(screenshot))

        for elem_id in ("quarf-degraded", "quarf-quarf", "quarf-baseline", "quarf-sweep"):
            assert image_source(elem_id), elem_id
        assert drawn_area("quarf-routing") > 10_000
        assert driver.execute_script("return document.querySelector('#quarf-degraded img').naturalWidth") == 210
        for elem_id in ("quarf-miou-quarf", "quarf-miou-baseline"):
            value = float(driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input").get_attribute("value"))
            assert 0.0 <= value <= 1.0
        legend = driver.find_element(By.ID, "quarf-legend").text
        assert any(name in legend for name in CLASS_NAMES[:5])
        assert "What the router sees" in driver.find_element(By.ID, "quarf-notes").text
        assert screenshot.stat().st_size > 20_000

        # A file named .png that is not an image (the browser itself refuses other extensions): one
        # line in the page (an error notice) that names it, no traceback.
        driver.find_element(By.CSS_SELECTOR, "#quarf-input button[aria-label='Remove Image']").click()
        fake = images["folder"] / "browser-fake.png"
        fake.write_text("not an image\n")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#quarf-input input[type=file]")).send_keys(str(fake))
        notice = wait.until(lambda d: d.execute_script(
            "const t = Array.from(document.querySelectorAll('.toast-message-text')).map(e => e.textContent.trim());"
            "return t.some(m => m.includes('is not an image')) ? t : null;"))
        line = next(m for m in notice if "is not an image" in m)
        assert line.startswith("image: expected an image file") and "browser-fake.png" in line
        assert "\n" not in line and "Traceback" not in " ".join(notice)
    finally:
        driver.quit()

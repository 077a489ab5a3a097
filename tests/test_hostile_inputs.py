"""Hostile inputs do bounded work: small files that expand, names that climb out of their
folder, images and model configs far larger than any real one, concurrent identical Space answers.

Each test fails on the code before the fix: messages expanded YAML aliases (minutes, gigabytes), study
arm names were joined into paths as given, a 169-megapixel PNG was decoded in full, a config asking for a
million experts was read expert by expert, and the Space's ``PngStore`` let one request remove another's
temporary file.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from bad_input_world import billion_laughs, header_only_png
from quarf_hf.models.checks import InputError, InputTypeError


@pytest.mark.parametrize("loader", ["train", "study", "train-quality", "build"])
@pytest.mark.parametrize("key", ["seed", "output_dir"])
def test_billion_laughs_is_refused_fast_and_small(tmp_path, loader, key):
    """The 9**9-value YAML is refused by every config reader in well under a second and a few megabytes."""
    from quarf_hf.hub.build import load_hub_config
    from quarf_hf.quality_training.config import load_quality_config
    from quarf_hf.study.config import load_study_config
    from quarf_hf.training.config import load_train_config

    read = {"train": load_train_config, "study": load_study_config, "train-quality": load_quality_config,
            "build": load_hub_config}[loader]
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(key))
    assert path.stat().st_size < 600
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError, match="expands its YAML aliases to more than 100,000 values"):
            read(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0 and peak < 20 * 2**20, (seconds, peak)


def test_yaml_bounds_leave_real_configs_alone(tmp_path):
    """The project's own configs (anchors included) read exactly as ``yaml.safe_load`` reads them; too
    many aliases and a self-referencing alias are refused by name."""
    from quarf_hf.yaml_files import read_yaml_mapping

    configs = Path(__file__).resolve().parents[1] / "configs"
    for path in [*configs.glob("*.yaml"), *(configs / "restoration").glob("*.yaml")]:
        assert read_yaml_mapping(path) == yaml.safe_load(path.read_text()), path
    many = tmp_path / "many.yaml"
    many.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    with pytest.raises(InputError, match=r"many\.yaml holds 101 YAML aliases \(\*name\); expected at most 100"):
        read_yaml_mapping(many)
    loop = tmp_path / "loop.yaml"
    loop.write_text("seed: &a [1, *a]\n")
    with pytest.raises(InputError, match="expands its YAML aliases"):
        read_yaml_mapping(loop)


def test_short_repr_never_walks_a_huge_shared_structure():
    """An alias-shared structure of 10**18 leaves is shown in a short line at once; plain values as repr."""
    from quarf_hf.models.checks import short_repr

    shared = [1] * 1000
    for _ in range(5):
        shared = [shared] * 1000
    start = time.perf_counter()
    text = short_repr(shared)
    assert time.perf_counter() - start < 0.1
    assert len(text) <= 80 and text.startswith("[[[...], [...], [...], [...], ...]")
    assert short_repr("x" * 10_000).startswith("'xxx") and len(short_repr("x" * 10_000)) <= 80
    assert short_repr(3) == "3" and short_repr("abc") == "'abc'" and short_repr({"a": 1}) == "{'a': 1}"


@pytest.mark.parametrize("bad", ["../../escaped", "..", ".", "a/b", "a\\b", "/abs", "", "  ", "x\0y", "~user"])
def test_path_names_refuse_what_leaves_the_folder(bad):
    from quarf_hf.models.checks import check_path_name

    with pytest.raises(InputError, match=r"^arms: expected a plain name \(no path separator, '\.\.' or NUL\)"):
        check_path_name("arms", bad)


@pytest.mark.parametrize("bad", [1, None, {}, ["a"]])
def test_path_names_refuse_non_text(bad):
    from quarf_hf.models.checks import check_path_name

    with pytest.raises(InputTypeError, match=r"^arms: expected a name \(text\)"):
        check_path_name("arms", bad)


def test_path_names_keep_plain_names():
    from quarf_hf.models.checks import check_path_name

    for name in ["quarf", "film-2", "static_v1", "arm.with.dots", "é"]:
        assert check_path_name("arms", name) == name


def test_study_run_folders_stay_inside_out(tmp_path):
    """The one function that makes a run's folder refuses a name that climbs out (defence in depth: the
    config refuses it first)."""
    from quarf_hf.study.runner import run_dir

    assert run_dir(tmp_path, "quarf", 0) == tmp_path / "runs" / "quarf" / "seed0"
    with pytest.raises(InputError, match="arms"):
        run_dir(tmp_path, "../../../escaped", 0)


def test_study_pilot_without_spread_is_one_line(tmp_path, monkeypatch):
    """Identical pilot differences (sd 0) stop the study with a line, not a ZeroDivisionError later."""
    from quarf_hf.study import runner
    from quarf_hf.study.config import load_study_config

    config = load_study_config(Path(__file__).resolve().parents[1] / "configs" / "study.yaml")
    monkeypatch.setattr(runner, "_score", lambda result, split, metric, degraded=True: 0.5)
    monkeypatch.setattr(runner, "load_result", lambda out_dir, name, seed: {})
    with pytest.raises(runner.StudyAborted, match="have no spread"):
        runner.pilot_sd(config, tmp_path)


def test_a_169_megapixel_png_is_refused_from_its_header(tmp_path):
    """``open_image``/``load_image`` refuse before decoding: in milliseconds, with the size and the cap."""
    from quarf_hf.models.image_utils import MAX_PIXELS, load_image, open_image

    path = header_only_png(tmp_path / "huge.png", 13_000, 13_000)
    for read in (open_image, load_image):
        start = time.perf_counter()
        with pytest.raises(InputError, match=r"expected at most 50,000,000 pixels .* found 13000x13000"):
            read(path)
        assert time.perf_counter() - start < 0.5
    assert MAX_PIXELS == 50_000_000


def test_the_space_shares_the_pixel_cap():
    from quarf_hf.models import image_utils
    from quarf_hf.space import images

    assert images.MAX_PIXELS is image_utils.MAX_PIXELS


def test_a_multi_frame_gif_says_which_frame_is_read(tmp_path):
    """Frame 0 is read, and a warning says so and how many frames there are (the frame rule)."""
    from PIL import Image

    from quarf_hf.models.image_utils import load_image

    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match=r"two\.gif'?: has 2 frames; reading the first one \(frame 0\)"):
        pixels = load_image(tmp_path / "two.gif")
    assert pixels[:, 0, 0].tolist() == [1.0, 0.0, 0.0]  # red: the first frame
    frames[0].save(tmp_path / "one.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a single-frame file reads without a word
        load_image(tmp_path / "one.png")


def test_a_million_experts_fails_in_milliseconds():
    """The count is checked before any expert is read or any module built."""
    from quarf_hf import QuarfSegformerConfig
    from tiny_models import segformer_config

    experts = [[3, 1]] * 1_000_000
    start = time.perf_counter()
    with pytest.raises(InputError, match="experts: expected at most 64 experts, found 1,000,000"):
        QuarfSegformerConfig(**segformer_config(), quarf={"experts": experts})
    assert time.perf_counter() - start < 0.1


def test_png_store_is_safe_under_concurrent_identical_answers(tmp_path):
    """Many threads storing the same image at the same moment all get the complete file, nobody's
    temporary file is removed by another, and none is left behind."""
    pytest.importorskip("gradio")
    from PIL import Image

    from quarf_hf.space.app import PngStore

    array = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    threads_per_round, rounds = 12, 15
    errors, paths = [], []
    for round_index in range(rounds):
        store = PngStore(tmp_path / f"round{round_index}")
        barrier = threading.Barrier(threads_per_round)

        def save():
            barrier.wait()
            try:
                paths.append(store(array))
            except Exception as err:  # noqa: BLE001 - every failure is the test's finding
                errors.append(f"{type(err).__name__}: {err}")

        workers = [threading.Thread(target=save) for _ in range(threads_per_round)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert [p.name for p in store.folder.iterdir()] == [Path(paths[-1]).name], "a temporary file was left"
    assert not errors, errors[:3]
    assert len(paths) == threads_per_round * rounds
    for path in set(paths):
        assert np.array_equal(np.asarray(Image.open(path)), array)


def test_extract_quality_reads_integer_and_channels_first_arrays_as_documented():
    """int32/int64 arrays are 0-255 like uint8, a channels-first array is the same image as its
    channels-last transpose (the reference: the uint8 HWC array), values outside 0-255 are refused."""
    from quarf_hf import extract_quality

    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    reference = extract_quality(image)
    for variant in (image.astype(np.int32), image.astype(np.int64), image.transpose(2, 0, 1).copy()):
        assert np.allclose(extract_quality(variant).numpy(), reference.numpy(), atol=1e-5)
    with pytest.raises(InputError, match=r"images\[0\]"):
        extract_quality(np.full((48, 48, 3), 300, dtype=np.int32))

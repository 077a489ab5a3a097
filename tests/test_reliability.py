"""Right answers under concurrency and odd input: per-call routing, the consent rule for code,
missing QuARF weights, seeds, umask, and value checks that wait for the device only where they must.

The one-line refusals of bad input (non-finite values included) are rows of the tables in
``tests/test_bad_inputs_*.py`` (``tests/test_bad_inputs.py`` says which); threads on shared models
are ``tests/test_concurrency.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from quarf_hf import QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, insert_quarf

TINY = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
            decoder_hidden_size=16, num_labels=3)


@pytest.fixture(scope="module")
def saved_segformer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "quarf-segformer"
    torch.manual_seed(0)
    QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY, quality="brisque")).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- per-call routing of an adapter
def test_record_routing_holds_each_forward_of_this_thread_only():
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1)).eval()
    adapter = insert_quarf(cnn, after="0", quality="brisque", num_groups=2)
    other_thread = threading.Thread(target=lambda: cnn(torch.rand(3, 3, 32, 32)))
    with adapter.record_routing() as routing:
        cnn(torch.rand(2, 3, 32, 32))
        other_thread.start()
        other_thread.join()  # its forward finishes inside the block, in another thread
        cnn(torch.rand(1, 3, 40, 40))
    cnn(torch.rand(4, 3, 32, 32))  # after the block: not recorded
    assert [r["0"].shape[0] for r in routing] == [2, 1]
    assert adapter.last_routing_weights["0"].shape[0] == 4
    adapter.unload()
    with pytest.raises(ValueError, match="not attached"):
        with adapter.record_routing():
            pass


# ---------------------------------------------------------------- consent for code
def test_commands_and_space_load_package_types_with_the_package_classes(saved_segformer, monkeypatch):
    """A QuARF folder whose saved code is booby-trapped: the package's classes load it, with or without
    the opt-in, from the commands' loader and the Space's; the trap never runs."""
    from quarf_hf.evaluation.loading import load_model, load_model_config
    from quarf_hf.space.models import load_one

    folder = saved_segformer.parent / "trapped"
    shutil.copytree(saved_segformer, folder)
    for name in os.listdir(folder):
        if name.endswith(".py"):
            (folder / name).write_text("raise RuntimeError('remote code ran')\n")
    for trust in (False, True):
        config = load_model_config(str(folder), trust)
        model = load_model(str(folder), config, trust)
        assert type(model) is QuarfSegformerForSemanticSegmentation
    monkeypatch.setenv("QUARF_TRUST_REMOTE_CODE", "1")
    assert type(load_one("quarf", str(folder)).model) is QuarfSegformerForSemanticSegmentation


def unknown_type_folder(base, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(base, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "someone_elses_model"
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_custom.py").write_text("raise RuntimeError('remote code ran')\n")
    return folder


def test_unknown_model_types_are_refused_without_the_opt_in(saved_segformer, tmp_path, monkeypatch):
    from quarf_hf.cli import main
    from quarf_hf.evaluation.loading import load_model_config
    from quarf_hf.space.models import load_space_models

    folder = unknown_type_folder(saved_segformer, tmp_path)
    with pytest.raises(ValueError, match="'someone_elses_model' model.*Pass --trust-remote-code"):
        load_model_config(str(folder), False)
    with pytest.raises(RuntimeError, match="remote code ran"):  # with the opt-in, its code is what runs
        load_model_config(str(folder), True)
    monkeypatch.delenv("QUARF_TRUST_REMOTE_CODE", raising=False)
    loaded = load_space_models(quarf=str(folder), device="cpu")
    assert loaded.quarf is None and "QUARF_TRUST_REMOTE_CODE=1" in loaded.errors["quarf"]
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(image)
    assert main(["predict", str(folder), str(image), "--out", str(tmp_path / "out")]) == 2


def test_a_bare_unknown_quality_name_is_refused_at_once():
    import time

    from quarf_hf import extract_quality

    start = time.monotonic()
    with pytest.raises(ValueError, match="unknown quality extractor 'niqe'; expected one of 'brisque', 'contrique'"):
        extract_quality(torch.rand(3, 32, 32), extractor="niqe")
    with pytest.raises(ValueError, match="unknown quality extractor 'niqe'"):
        insert_quarf(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1)), after="0", quality="niqe")
    assert time.monotonic() - start < 2  # no Hub look-up (offline: ~23 s of retries)


# ---------------------------------------------------------------- missing QuARF weights
def test_a_checkpoint_without_its_quarf_tensors_warns_naming_them(saved_segformer, tmp_path):
    folder = tmp_path / "no-quarf"
    shutil.copytree(saved_segformer, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if ".quarf." not in k}, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match=r"no QuARF weights \(segformer\.quarf\..*starts as the identity"):
        model = QuarfSegformerForSemanticSegmentation.from_pretrained(folder)
    assert torch.count_nonzero(model.segformer.quarf.residual_scale) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete checkpoint: no warning
        _, info = QuarfSegformerForSemanticSegmentation.from_pretrained(saved_segformer, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]


# ---------------------------------------------------------------- seeds
def test_initial_weights_and_random_data_follow_the_seed_only(tmp_path):
    """The same seed gives the same initial weights and the same randomly drawn data, whatever the global
    RNG's state before the run, how much the data loading draws, or how many loader workers there are."""
    from quarf_hf.training import TrainConfig
    from quarf_hf.training.loop import Task, setup_training

    class RandomDataTask(Task):
        def __init__(self, config, draws_before, workers):
            self.config, self.draws_before, self.num_workers = config, draws_before, workers

        def load_data(self, accelerator):
            self.data = torch.rand(8, 3)  # e.g. a random crop or split, drawn from the global RNG
            torch.rand(self.draws_before)  # a source that draws more or less (order, sizes...)
            return torch.utils.data.TensorDataset(self.data)

        def build_model(self, dataset, accelerator):
            return torch.nn.Linear(3, 2)

    runs = []
    for index, (state, draws, workers) in enumerate([(0, 0, 0), (1, 1000, 0), (2, 7, 2)]):
        config = TrainConfig.from_dict({
            "output_dir": str(tmp_path / f"run{index}"), "seed": 3, "batch_size": 2, "max_steps": 1,
            "model": {"type": "segformer", "config": {}}, "data": {"train": {"type": "quarf-shapes", "num_samples": 4}}})
        torch.manual_seed(state)
        torch.rand(state * 11)
        task = RandomDataTask(config, draws, workers)
        run = setup_training(task)
        runs.append((task.data, run.accelerator.unwrap_model(run.model).weight.detach().clone()))
    for data, weight in runs[1:]:
        assert torch.equal(data, runs[0][0]) and torch.equal(weight, runs[0][1])


# ---------------------------------------------------------------- atomic writes and the umask
def test_atomic_writes_never_change_the_umask_even_from_threads(tmp_path, monkeypatch):
    from quarf_hf import atomic

    previous = os.umask(0o022)
    monkeypatch.setattr(os, "umask", lambda *args: pytest.fail("os.umask is process-wide; atomic must not call it"))
    try:
        errors = []

        def write(index):
            try:
                atomic.write_text_atomic(tmp_path / f"file{index}.json", "{}")
                with atomic.atomic_folder(tmp_path / f"folder{index}") as staging:
                    (staging / "x").write_text("x")
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert not errors, errors
    assert {stat.S_IMODE(os.stat(tmp_path / f"file{i}.json").st_mode) for i in range(8)} == {0o644}
    assert {stat.S_IMODE(os.stat(tmp_path / f"folder{i}").st_mode) for i in range(8)} == {0o755}


# ---------------------------------------------------------------- checks that wait for the device
def test_value_checks_run_in_inference_and_on_the_first_training_batch_only(monkeypatch):
    """A training step after the first does not read label values back (a host sync on an accelerator);
    inference always checks, and a bad first batch is still refused."""
    from quarf_hf.models import modeling_quarf_segformer as segformer

    torch.manual_seed(0)
    model = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY, quality="brisque")).train()
    pixels, labels = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    with pytest.raises(ValueError, match="labels: expected class ids from 0 to 2"):
        model(pixel_values=pixels, labels=torch.full((2, 32, 32), 7))  # the first training batch is checked
    fresh = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY, quality="brisque")).train()
    syncs = []
    original_any = torch.Tensor.any
    monkeypatch.setattr(torch.Tensor, "any", lambda self, *a, **k: syncs.append(1) or original_any(self, *a, **k))
    fresh(pixel_values=pixels, labels=labels).loss.backward()
    first = len(syncs)
    for _ in range(3):
        fresh(pixel_values=pixels, labels=labels).loss.backward()
    assert first > 0 and len(syncs) == first, "only the first training batch reads values back"
    fresh.eval()
    with torch.no_grad(), pytest.raises(ValueError, match="labels: expected class ids"):
        fresh(pixel_values=pixels, labels=torch.full((2, 32, 32), 7))
    assert segformer.check_labels  # the check itself is unchanged

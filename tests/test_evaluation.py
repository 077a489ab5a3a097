"""Robustness evaluation: meters vs torchmetrics, fixed degraded images, sharding, routing,
restoration, reports and the ``quarf-hf evaluate`` command."""

import json

import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from transformers import AutoModel, AutoModelForSemanticSegmentation, SegformerForSemanticSegmentation

from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel, QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation
from quarf_hf.cli import main
from quarf_hf.data import load_dataset_spec
from quarf_hf.degradations import degrade
from quarf_hf.evaluation import (
    RestorationMeter,
    SegmentationMeter,
    evaluate_model,
    markdown_table,
    model_pixel_normalisation,
    write_report,
)
from quarf_hf.evaluation.runner import degradation_seed
from tiny_models import make_quarf_segformer, make_restoration, make_segformer, segformer_config

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def shapes(task="segmentation", num_samples=5, size=64):
    return load_dataset_spec({"type": "quarf-shapes", "num_samples": num_samples, "size": size, "seed": 0, "task": task})


@pytest.fixture(scope="module")
def seg_data():
    return shapes()


def tiny_quarf(num_labels, seed=0):
    torch.manual_seed(seed)
    return make_quarf_segformer(num_labels)


def tiny_segformer(num_labels, seed=1):
    torch.manual_seed(seed)
    return make_segformer(num_labels)


def json_round_trip(value):
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- meters


@pytest.mark.parametrize("ignore_index", [255, 0])
def test_segmentation_meter_matches_torchmetrics(ignore_index):
    """mIoU, per-class IoU and pixel accuracy accumulated over three batches equal torchmetrics'
    MulticlassJaccardIndex (macro / none) and MulticlassAccuracy (micro) with the same ignore_index,
    on data where class 4 never occurs, class 5 is only predicted, and some labels are ignored."""
    gen = torch.Generator().manual_seed(0)
    num_classes = 6
    meter = SegmentationMeter(num_classes, ignore_index=ignore_index)
    jaccard = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=ignore_index)
    per_class = MulticlassJaccardIndex(num_classes, average="none", ignore_index=ignore_index)
    accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore_index)
    for _ in range(3):
        labels = torch.randint(0, 4, (2, 9, 11), generator=gen)  # classes 0-3 only
        predictions = torch.randint(0, 4, (2, 9, 11), generator=gen)
        predictions[predictions == 3] = torch.where(torch.rand(1, generator=gen) > 0.5, 5, 3)  # class 5: predicted only
        labels[torch.rand(labels.shape, generator=gen) < 0.2] = ignore_index
        meter.update(predictions, labels)
        for metric in (jaccard, per_class, accuracy):
            metric.update(predictions, labels)
    result = meter.compute()
    assert result["mIoU"] == pytest.approx(jaccard.compute().item(), abs=1e-6)
    assert result["per_class_iou"] == pytest.approx(per_class.compute().tolist(), abs=1e-6)
    assert result["pixel_accuracy"] == pytest.approx(accuracy.compute().item(), abs=1e-6)
    # The absent class (4) is left out of the mean: the mean over all six classes would be lower.
    assert result["per_class_iou"][4] == 0.0
    assert result["mIoU"] > sum(result["per_class_iou"]) / num_classes


def test_segmentation_meter_rejects_out_of_range_labels():
    """A label that is neither a class nor ignore_index is an error naming `labels`."""
    meter = SegmentationMeter(3)
    with pytest.raises(ValueError, match="labels"):
        meter.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))


def test_restoration_meter_matches_torchmetrics():
    """Mean per-image PSNR and SSIM over two batches equal torchmetrics' functional PSNR (one call
    per image, data_range 1) and SSIM (reduction none, data_range 1) averaged over the images."""
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(5, 3, 24, 20, generator=gen)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=gen) * torch.rand(5, 1, 1, 1, generator=gen)).clamp(0, 1)
    meter = RestorationMeter()
    meter.update(noisy[:2], clean[:2])
    meter.update(noisy[2:], clean[2:])
    result = meter.compute()
    psnr = torch.stack([peak_signal_noise_ratio(noisy[i : i + 1], clean[i : i + 1], data_range=1.0) for i in range(5)])
    ssim = structural_similarity_index_measure(noisy, clean, data_range=1.0, reduction="none")
    assert result["psnr"] == pytest.approx(psnr.mean().item(), rel=1e-5)
    assert result["ssim"] == pytest.approx(ssim.mean().item(), rel=1e-5)
    # identical images: PSNR capped at 100 dB (not inf), SSIM 1
    same = RestorationMeter()
    same.update(clean, clean)
    assert same.compute() == pytest.approx({"psnr": 100.0, "ssim": 1.0})


# --------------------------------------------------------------------------- runner


def recorder(model, mean, std):
    """Records the [0, 1] images (un-normalised pixel_values) the model is called with."""
    seen = []
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)

    def hook(module, args, kwargs):
        seen.append((kwargs["pixel_values"] * std_t + mean_t).clone())

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def test_runs_are_deterministic_and_models_see_identical_images(seg_data):
    """Two evaluations of one model give identical results; a QuARF-SegFormer and a plain
    SegFormer (different normalisations) are given identical [0, 1] images; evaluating the
    random corruption alone, with another batch size, gives the same images for it;
    and the degraded images differ from the clean ones and between severities."""
    kwargs = dict(corruptions=["gaussian_noise", "defocus_blur"], severities=[1, 3], seed=3, progress=False)
    quarf = tiny_quarf(seg_data.num_labels)
    plain = tiny_segformer(seg_data.num_labels)
    mean_q, std_q = model_pixel_normalisation(quarf)
    quarf_seen = recorder(quarf, mean_q, std_q)
    plain_seen = recorder(plain, *IMAGENET)
    first = evaluate_model(quarf, seg_data, batch_size=2, **kwargs)
    second = evaluate_model(quarf, seg_data, batch_size=2, **kwargs)
    assert first == second
    evaluate_model(plain, seg_data, batch_size=2, **kwargs)
    quarf_images = torch.cat(quarf_seen[: len(quarf_seen) // 2])
    plain_images = torch.cat(plain_seen)
    assert torch.allclose(quarf_images, plain_images, atol=1e-5)

    # 5 images per condition; conditions: clean, noise s1, noise s3, blur s1, blur s3
    per_condition = quarf_images.split(5)
    clean, noise1, noise3, blur1, blur3 = per_condition
    assert not torch.allclose(clean, noise1, atol=1e-3) and not torch.allclose(noise1, noise3, atol=1e-3)
    assert not torch.allclose(clean, blur1, atol=1e-3)

    evaluate_model(plain, seg_data, batch_size=3, **{**kwargs, "corruptions": ["gaussian_noise"]})
    plain_subset = torch.cat(plain_seen[len(plain_seen) - 3 * 2 :])  # the last run: 3 conditions x 2 batches
    _, noise1_alone, noise3_alone = plain_subset.split(5)
    assert torch.allclose(noise1_alone, noise1, atol=1e-5) and torch.allclose(noise3_alone, noise3, atol=1e-5)


class FakeAccelerator:
    """One process of a simulated multi-process run.

    In the recording pass ``reduce`` stores each tensor and returns it; in the summing pass it
    returns the sum, over all simulated processes, of the tensors recorded at the same call."""

    def __init__(self, process_index, num_processes, recorded=None):
        self.process_index, self.num_processes = process_index, num_processes
        self.device = torch.device("cpu")
        self.is_main_process = process_index == 0
        self.recorded = recorded
        self.calls = []

    def reduce(self, tensor, reduction="sum"):
        assert reduction == "sum"
        if self.recorded is None:
            self.calls.append(tensor.clone())
            return tensor
        position = len(self.calls)
        self.calls.append(tensor)
        return sum(process[position] for process in self.recorded)


@pytest.mark.parametrize("task", ["segmentation", "restoration"])
def test_two_shards_agree_with_one_process(seg_data, task):
    """With a simulated 2-process accelerator, each process's results equal the single-process
    results (images 0, 2, 4 on one process and 1, 3 on the other, batch size 2)."""
    data = seg_data if task == "segmentation" else shapes("restoration")
    if task == "segmentation":
        model = tiny_quarf(data.num_labels)
    else:
        torch.manual_seed(0)
        model = make_restoration()
        torch.nn.init.normal_(model.conv_out.weight, std=0.05)  # not the identity, so the model matters
    kwargs = dict(corruptions=["shot_noise", "motion_blur"], severities=[2], seed=1, batch_size=2, progress=False)
    single = evaluate_model(model, data, **kwargs)
    recording = [FakeAccelerator(rank, 2) for rank in range(2)]
    for accelerator in recording:
        evaluate_model(model, data, accelerator=accelerator, **kwargs)
    recorded = [accelerator.calls for accelerator in recording]
    assert len(recorded[0]) == len(recorded[1]) > 0
    for rank in range(2):
        sharded = evaluate_model(model, data, accelerator=FakeAccelerator(rank, 2, recorded), **kwargs)
        assert sharded["num_images"] == single["num_images"] == len(data)
        for condition in ("clean", "mean_corrupted"):
            for key, value in single[condition].items():
                assert sharded[condition][key] == pytest.approx(value, rel=1e-9), (condition, key)
        for name in kwargs["corruptions"]:
            for key, value in single["corruptions"][name]["2"].items():
                assert sharded["corruptions"][name]["2"][key] == pytest.approx(value, rel=1e-9), (name, key)


def test_routing_reported_for_quarf_only(seg_data):
    """A QuARF-SegFormer's results carry the receptive fields 3, 5, 9, 17 and, per condition, a
    mean routing vector that sums to 1; a plain SegFormer's carry neither. Metrics are in range
    and the layout has every corruption x severity."""
    kwargs = dict(corruptions=["fog"], severities=[1, 5], progress=False)
    quarf = evaluate_model(tiny_quarf(seg_data.num_labels), seg_data, **kwargs)
    assert quarf["experts"] == [3, 5, 9, 17]
    for entry in (quarf["clean"], quarf["corruptions"]["fog"]["1"], quarf["corruptions"]["fog"]["5"], quarf["mean_corrupted"]):
        assert len(entry["routing"]) == 4 and sum(entry["routing"]) == pytest.approx(1.0, abs=1e-5)
    assert quarf["corruptions"]["fog"]["1"]["routing"] != quarf["clean"]["routing"]
    plain = evaluate_model(tiny_segformer(seg_data.num_labels), seg_data, **kwargs)
    assert "experts" not in plain and "routing" not in plain["clean"] and "routing" not in plain["mean_corrupted"]
    for results in (quarf, plain):
        assert results["task"] == "segmentation" and results["metric"] == "mIoU" and results["num_images"] == 5
        assert set(results["corruptions"]["fog"]) == {"1", "5"}
        for entry in (results["clean"], *results["corruptions"]["fog"].values()):
            assert 0 <= entry["mIoU"] <= 1 and 0 <= entry["pixel_accuracy"] <= 1
            assert len(entry["per_class_iou"]) == seg_data.num_labels
        means = [results["corruptions"]["fog"][s]["mIoU"] for s in ("1", "5")]
        assert results["mean_corrupted"]["mIoU"] == pytest.approx(sum(means) / 2)


def test_restoration_identity_model_scores_the_degradation():
    """A freshly built QuarfRestorationModel is the identity; its clean PSNR is the 100 dB cap
    and SSIM 1, and under gaussian_noise severity 4 its PSNR equals the PSNR of the degraded
    images against the clean ones, the degraded images rebuilt here from degradation_seed."""
    data = shapes("restoration", num_samples=3)
    torch.manual_seed(0)
    model = make_restoration()
    model.train()
    results = evaluate_model(model, data, corruptions=["gaussian_noise"], severities=[4], seed=7, batch_size=2, progress=False)
    assert model.training  # mode restored
    assert results["task"] == "restoration" and results["metric"] == "psnr" and results["secondary_metric"] == "ssim"
    assert results["clean"]["psnr"] == pytest.approx(100.0) and results["clean"]["ssim"] == pytest.approx(1.0)
    assert results["experts"] == [3, 5, 9, 17] and len(results["clean"]["routing"]) == 4
    expected = RestorationMeter()
    for index in range(len(data)):
        clean = data[index]["labels"].unsqueeze(0)
        generator = torch.Generator().manual_seed(degradation_seed(7, "gaussian_noise", 4, index))
        expected.update(degrade(clean, "gaussian_noise", 4, generator=generator).clamp(0, 1), clean)
    expected = expected.compute()
    assert results["corruptions"]["gaussian_noise"]["4"]["psnr"] == pytest.approx(expected["psnr"], rel=1e-5)
    assert results["corruptions"]["gaussian_noise"]["4"]["ssim"] == pytest.approx(expected["ssim"], rel=1e-5)
    assert results["corruptions"]["gaussian_noise"]["4"]["psnr"] < 40


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"corruptions": ["gaussian_noize"]}, "corruptions"),
        ({"severities": [0, 2]}, "severities"),
        ({"severities": [6]}, "severities"),
        ({"batch_size": 0}, "batch_size"),
        ({"dataset": []}, "dataset"),
        ({"dataset": "restoration"}, "dataset"),
    ],
)
def test_evaluate_model_argument_errors(seg_data, kwargs, argument):
    """Bad arguments raise a ValueError naming the argument before the model is called."""
    model = tiny_segformer(seg_data.num_labels)
    calls = recorder(model, *IMAGENET)
    dataset = kwargs.pop("dataset", seg_data)
    dataset = shapes("restoration", num_samples=1) if dataset == "restoration" else dataset  # clean images as labels
    with pytest.raises(ValueError, match=argument) as info:
        evaluate_model(model, dataset, progress=False, **kwargs)
    if argument == "corruptions":
        assert "defocus_blur" in str(info.value)  # the known names are listed
    assert not calls


def test_pixel_normalisation(tmp_path, seg_data):
    """QuARF-SegFormer: its config's mean/std; plain SegFormer: ImageNet, or the saved image
    processor's values when its folder has one; restoration: mean 0, std 1."""
    config = QuarfSegformerConfig(**segformer_config(), num_labels=2, quality="brisque", image_mean=[0.5] * 3, image_std=[0.25] * 3)
    assert model_pixel_normalisation(QuarfSegformerForSemanticSegmentation(config)) == ([0.5] * 3, [0.25] * 3)
    plain = tiny_segformer(2)
    assert model_pixel_normalisation(plain) == IMAGENET
    plain.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3], "image_std": [0.4, 0.5, 0.6]}))
    loaded = SegformerForSemanticSegmentation.from_pretrained(tmp_path)
    assert model_pixel_normalisation(loaded) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    restoration = make_restoration()
    assert model_pixel_normalisation(restoration) == ([0.0] * 3, [1.0] * 3)


# --------------------------------------------------------------------------- report and CLI


def cli_args(model_dir, out, corruptions="gaussian_noise,defocus_blur", severities="1-2"):
    return [
        "evaluate", str(model_dir), "--dataset", "quarf-shapes", "--num-samples", "4", "--corruptions", corruptions,
        "--severities", severities, "--out", str(out), "--no-progress", "--device", "cpu",
    ]


@pytest.mark.parametrize("kind", ["quarf", "segformer"])
def test_cli_evaluate_end_to_end(tmp_path, capsys, kind):
    """`quarf-hf evaluate` on a saved tiny model: exit 0; results.json equals evaluate_model
    called directly on the reloaded model and the same quarf-shapes spec; metric ranges; the
    Markdown table is printed and in results.md; the PNGs open with PIL; the routing plot exists
    for QuARF only."""
    data = shapes(num_samples=4)
    model = tiny_quarf(data.num_labels) if kind == "quarf" else tiny_segformer(data.num_labels)
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    assert main(cli_args(tmp_path / "model", out)) == 0
    printed = capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == {"type": "quarf-shapes", "num_samples": 4, "size": 64, "seed": 0, "task": "segmentation",
                                  "num_classes": data.num_labels}
    reloaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path / "model")
    direct = evaluate_model(
        reloaded, load_dataset_spec(results["dataset"]), corruptions=["gaussian_noise", "defocus_blur"],
        severities=[1, 2], seed=0, progress=False,
    )
    assert {k: v for k, v in results.items() if k not in ("model", "dataset")} == json_round_trip(direct)
    assert results["num_images"] == 4 and results["severities"] == [1, 2]
    assert list(results["corruptions"]) == ["gaussian_noise", "defocus_blur"]
    for entry in (results["clean"], results["mean_corrupted"], *results["corruptions"]["defocus_blur"].values()):
        assert 0 <= entry["mIoU"] <= 1 and 0 <= entry["pixel_accuracy"] <= 1

    table = markdown_table(results)
    assert table in printed and table in (out / "results.md").read_text()
    assert "| gaussian_noise |" in table and table.count("\n") == 2 + 1 + 2 + 1
    pngs = ["metric_vs_severity.png"] + (["routing_vs_severity.png"] if kind == "quarf" else [])
    for name in pngs:
        with Image.open(out / name) as image:
            image.verify()
    assert (out / "routing_vs_severity.png").exists() == (kind == "quarf")
    assert ("experts" in results) == (kind == "quarf")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_evaluate_restoration(tmp_path):
    """A saved QuARF restoration model is loaded with AutoModel and scored with PSNR/SSIM."""
    torch.manual_seed(0)
    make_restoration().save_pretrained(tmp_path / "model")
    assert main(cli_args(tmp_path / "model", tmp_path / "out", corruptions="jpeg_compression", severities="2")) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["task"] == "restoration" and results["dataset"]["task"] == "restoration"
    assert 0 < results["corruptions"]["jpeg_compression"]["2"]["psnr"] < results["clean"]["psnr"]
    assert (tmp_path / "out" / "routing_vs_severity.png").exists()
    assert isinstance(AutoModel.from_pretrained(tmp_path / "model"), QuarfRestorationModel)


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"severities": "0-7"}, "--severities"),
        ({"severities": "two"}, "--severities"),
        ({"corruptions": "gaussian_noise,gaussian_noize"}, "--corruptions"),
        ({}, "MODEL"),
    ],
)
def test_cli_argument_errors(tmp_path, capsys, change, argument):
    """Bad --severities, an unknown corruption and a missing model folder exit with code 2 and a
    message naming the argument; the option errors are found before the (missing) model is
    looked at, and no output folder is created."""
    assert main(cli_args(tmp_path / "missing", tmp_path / "out", **change)) == 2
    error = capsys.readouterr().err
    assert argument in error and "quarf-hf evaluate: error" in error
    assert not (tmp_path / "out").exists()


def test_write_report_without_corruptions(tmp_path):
    """A clean-only result still gives a table (clean row only) and a metric plot; nothing else."""
    results = {
        "task": "segmentation", "metric": "mIoU", "secondary_metric": "pixel_accuracy",
        "clean": {"mIoU": 0.5, "pixel_accuracy": 0.75, "per_class_iou": [0.5, 0.5]},
        "corruptions": {}, "mean_corrupted": {}, "severities": [], "num_images": 2, "seed": 0,
    }
    paths = write_report(results, tmp_path / "report")
    assert sorted(paths) == ["json", "markdown", "metric_plot"]
    assert markdown_table(results).splitlines()[2] == "| clean | 0.5000 |"


def test_cli_evaluate_gives_quarf_shapes_the_models_classes(tmp_path, capsys):
    """A 3-class model (as in the README) is evaluated on 3-class quarf-shapes scenes; a model
    with more classes than quarf-shapes has gets an error naming --dataset."""
    tiny_quarf(3).save_pretrained(tmp_path / "three")
    assert main(cli_args(tmp_path / "three", tmp_path / "out", corruptions="fog", severities="1")) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["dataset"]["num_classes"] == 3 and 0 <= results["clean"]["mIoU"] <= 1
    tiny_segformer(9).save_pretrained(tmp_path / "nine")
    assert main(cli_args(tmp_path / "nine", tmp_path / "out9", corruptions="fog", severities="1")) == 2
    assert "--dataset" in capsys.readouterr().err and not (tmp_path / "out9").exists()


def test_a_process_without_images_joins_every_reduction(seg_data):
    """More processes than images (3 processes, 2 images): the idle process makes the same
    reduce calls as the busy ones (a mismatch would hang a real run) and all get the
    single-process numbers."""
    data = torch.utils.data.Subset(seg_data, [0, 1])
    data.num_labels = seg_data.num_labels
    model = tiny_quarf(seg_data.num_labels)
    kwargs = dict(corruptions=["fog"], severities=[1], seed=0, batch_size=2, progress=False)
    single = evaluate_model(model, data, **kwargs)
    recording = [FakeAccelerator(rank, 3) for rank in range(3)]
    for accelerator in recording:
        evaluate_model(model, data, accelerator=accelerator, **kwargs)
    assert len({len(accelerator.calls) for accelerator in recording}) == 1
    recorded = [accelerator.calls for accelerator in recording]
    idle = evaluate_model(model, data, accelerator=FakeAccelerator(2, 3, recorded), **kwargs)
    # batches of 1 here, of 2 in the single run: the model's float32 sums differ in the last bits
    assert idle["clean"]["mIoU"] == pytest.approx(single["clean"]["mIoU"], rel=1e-5)
    assert idle["clean"]["routing"] == pytest.approx(single["clean"]["routing"], rel=1e-5)


def test_restoration_identity_row_is_the_degraded_input_per_kind_and_severity():
    """The results' "identity": each kind x severity scored on the degraded input itself (the floor),
    built here by hand from degradation_seed and the size rule; the model's own rows are separate."""
    data = load_dataset_spec({"type": "photos", "photos": ["chelsea"], "crop_size": 128})
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4,
                                                         conditioning="none"))
    with torch.no_grad():  # a model that is no longer the identity, so its rows differ from the floor
        model.conv_out.bias.fill_(0.05)
    results = evaluate_model(model, data, corruptions=["shot_noise", "defocus_blur"], severities=[2, 4], seed=3,
                             batch_size=4, progress=False, reference_size=224)
    identity = results["identity"]
    assert identity["clean"] == {"psnr": 100.0, "ssim": 1.0}
    for name in ("shot_noise", "defocus_blur"):
        for severity in (2, 4):
            expected = RestorationMeter()
            for index in range(len(data)):
                clean = data[index]["labels"].unsqueeze(0)
                generator = torch.Generator().manual_seed(degradation_seed(3, name, severity, index))
                expected.update(degrade(clean, name, severity, generator=generator, reference_size=224), clean)
            expected = expected.compute()
            assert identity["corruptions"][name][str(severity)] == pytest.approx(expected, rel=1e-9)
            assert results["corruptions"][name][str(severity)]["psnr"] != pytest.approx(expected["psnr"], rel=1e-3)
    means = [identity["corruptions"][n][s]["psnr"] for n in ("shot_noise", "defocus_blur") for s in ("2", "4")]
    assert identity["mean_corrupted"]["psnr"] == pytest.approx(sum(means) / 4)
    assert "experts" not in results  # conditioning "none" routes nothing


def test_psnr_and_ssim_agree_with_scikit_image():
    """A second reference for the restoration metrics (torchmetrics is the first, above): scikit-image's
    skimage.metrics on crops of real photos under three kinds. PSNR agrees to rounding; SSIM to 0.01,
    the difference being the border (skimage averages the map without a 5-px border, torchmetrics and
    this package reflect-pad and average it all), and it orders the images the same way."""
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio as sk_psnr
    from skimage.metrics import structural_similarity as sk_ssim

    from quarf_hf.data.photos import load_photo
    from quarf_hf.evaluation.metrics import psnr_per_image, ssim_per_image

    ours, theirs = [], []
    for name in ("chelsea", "coffee", "astronaut"):
        clean = load_photo(name)[:, :96, :128].unsqueeze(0)
        for kind in ("shot_noise", "defocus_blur", "jpeg_compression"):
            degraded = degrade(clean, kind, 3, generator=torch.Generator().manual_seed(0))
            a, b = degraded[0].double().numpy(), clean[0].double().numpy()
            assert psnr_per_image(degraded, clean).item() == pytest.approx(sk_psnr(b, a, data_range=1.0), abs=1e-9)
            reference = sk_ssim(b, a, data_range=1.0, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, win_size=11)
            ours.append(ssim_per_image(degraded, clean).item())
            theirs.append(reference)
            assert ours[-1] == pytest.approx(reference, abs=0.01), (name, kind)
    assert (np.argsort(ours) == np.argsort(theirs)).mean() > 0.7


@pytest.mark.parametrize("conditioning, routed", [("route", True), ("static_film", True), ("film", False), ("none", False)])
def test_every_conditioning_mode_evaluates_and_reports_routing_where_its_block_mixes_experts(conditioning, routed):
    """Each conditioning mode of the dncnn restorer goes through the evaluation runner (a
    "static_film" model returns its fixed mixture as routing weights: evaluation crashed on it
    while summing them); routing is reported where the block mixes experts, and for the fixed
    mixture it is the same for every condition (the softmax of one constant router input)."""
    data = load_dataset_spec({"type": "photos", "photos": ["chelsea"], "crop_size": 64, "crops": "random", "num_samples": 2})
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(
        backbone="dncnn", block_out_channels=[8], num_layers=1, norm_num_groups=4, conditioning=conditioning,
        quarf={"num_groups": 4, "experts": [[3, 1], [3, 2]]})).eval()
    results = evaluate_model(model, data, corruptions=["gaussian_noise"], severities=[1, 5], seed=0,
                             batch_size=2, progress=False)
    assert (results.get("experts") is not None) == routed
    assert ("routing" in results["clean"]) == routed
    if conditioning == "static_film":
        rows = [results["clean"]["routing"]] + [results["corruptions"]["gaussian_noise"][s]["routing"] for s in ("1", "5")]
        assert all(row == pytest.approx(rows[0], abs=1e-12) for row in rows)

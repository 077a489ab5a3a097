"""``quarf-hf study``: config checks, the power computation, the regime gate, separate images and
seeds, arms equal to their base at step 0, the report's plain readings (tiny and fast: no study run)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from quarf_hf.cli import main
from quarf_hf.study import StudyConfig, corruption_family, regime_gate, seeds_needed, write_study_report
from quarf_hf.study.power import normal_approximation, paired_power
from quarf_hf.study.report import reading
from quarf_hf.study.runner import check_separate_images, run_dir
from tiny_models import segformer_config

REPO = Path(__file__).resolve().parents[1]
UNET = {"block_out_channels": [8, 16], "norm_num_groups": 4}
BLOCK = {"num_groups": 2, "experts": [[3, 1], [3, 2]], "mode": "soft", "residual": True}
KINDS = {"augmentation": ["gaussian_noise", "gaussian_blur"], "development": ["shot_noise", "defocus_blur"],
         "test": ["speckle_noise", "motion_blur"]}


def restoration_model(conditioning="route", quality="brisque"):
    return {"type": "quarf_restoration", "quality": quality, "config": {**UNET, "conditioning": conditioning}, "quarf": BLOCK}


def tiny_study(**changes) -> dict:
    study = {
        "base": {"task": "restoration", "max_steps": 2, "batch_size": 2,
                 "data": {"train": {"type": "photos", "split": "train", "crop_size": 32, "num_samples": 4}},
                 "model": restoration_model("none"), "augmentation": {"policy": "degradation", "p": 0.9}},
        "arms": {"plain": {}, "static": {"model": restoration_model(quality={"type": "constant", "dim": 36})},
                 "film": {"model": restoration_model("film")}, "quarf": {"model": restoration_model()}},
        "control": "plain", "diagnostics": {"arm": "quarf", "dilations": [1, 2], "oracle": True},
        "images": {"development": {"type": "photos", "split": "development", "crops": "random", "num_samples": 2,
                                   "crop_size": 32},
                   "test": {"type": "photos", "split": "test", "crops": "random", "num_samples": 2, "crop_size": 32}},
        "kinds": KINDS, "families": ["noise", "blur"], "severities": [3], "effect": 0.1,
        "primary": ["quarf", "static"], "secondary": [["quarf", "film"]], "pilot_seeds": 4, "min_seeds": 2,
        "max_seeds": 4, "workers": 2,
    }
    study.update(changes)
    return study


@pytest.mark.parametrize("change, message", [
    ({"kinds": {**KINDS, "test": ["shot_noise", "motion_blur"]}}, "development and test must be disjoint"),
    ({"kinds": {**KINDS, "development": ["shot_noise"]}}, "kinds.development: must span the families"),
    ({"arms": {"plain": {"max_steps": 5}, "quarf": {}}}, "arms.plain: ['max_steps'] must be the same for every arm"),
    ({"arms": {**tiny_study()["arms"], "plain": {"augmentation": {"policy": "degradation", "corruptions": ["shot_noise"]}}}},
     "arms.plain.augmentation.corruptions: ['shot_noise'] are not in kinds.augmentation"),
    # the training kinds of restoration (the base recipe's own mix) are checked too
    ({"pretrain": {"augmentation": {"policy": "degradation", "corruptions": ["gaussian_noise", "defocus_blur"]}}},
     "pretrain.augmentation.corruptions: ['defocus_blur'] are not in kinds.augmentation"),
    ({"images": {"development": {"type": "photos", "split": "test"}, "test": {"type": "photos", "split": "test"}}},
     "images: development and test must be different images"),
    ({"images": {"development": {"type": "photos", "split": "train"}, "test": {"type": "photos", "split": "test"}}},
     "images: the training photos"),
    ({"primary": ["quarf", "nope"]}, "primary: expected pairs of two different arms"),
    ({"protocol": "distill"}, "protocol"),
    ({"pilot_seeds": 2}, "pilot_seeds: expected an integer >= 4"),
    ({"declared_sd": -1}, "declared_sd"),
    ({"precondition": {"margin": 0.05, "pick_gain": 0.1}, "diagnostics": {"arm": "quarf", "dilations": [1]}},
     "precondition: needs diagnostics with at least two dilations and oracle: true"),
    ({"test_kinds": "training"}, "kinds: expected a mapping with exactly ['augmentation', 'development', 'test', 'unseen']"),
    ({"test_kinds": "training", "kinds": {**KINDS, "unseen": ["shot_noise", "defocus_blur"]}},
     "kinds.development: with test_kinds: training, expected the augmentation kinds"),
    ({"test_kinds": "training", "kinds": {"augmentation": KINDS["augmentation"], "development": KINDS["augmentation"],
                                          "test": KINDS["augmentation"], "unseen": ["gaussian_noise", "defocus_blur"]}},
     "kinds: augmentation and unseen must be disjoint"),
    ({"effect": 0}, "effect"),
    # the task follows from the model types: a segmentation arm in a restoration study is refused
    ({"base": {k: v for k, v in tiny_study()["base"].items() if k != "task"},
      "arms": {**tiny_study()["arms"], "plain": {"model": {"type": "quarf_segformer"}}}},
     "arms.plain.model.type: a segmentation model, but the base network is a restoration model"),
])
def test_bad_configs_are_refused_before_any_run(tmp_path, capsys, change, message):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tiny_study(**change)))
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not out.exists()


def test_power_matches_reference_values():
    """Paired t-test, two-sided alpha 0.05, 80% power: the textbook table (Cohen; G*Power's
    one-sample/paired values n = 34, 15, 10 for d = 0.5, 0.8, 1.0) and the normal approximation."""
    assert [seeds_needed(1.0, d) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    for sd, effect in [(0.06, 0.02), (0.3, 0.1), (1.0, 0.5), (0.05, 0.04)]:
        exact = seeds_needed(sd, effect)
        # the approximation ignores the t distribution's heavier tails: a seed or two low
        assert 0 <= exact - math.ceil(normal_approximation(sd, effect)) <= 2, (sd, effect)
        assert paired_power(exact, sd, effect) >= 0.8 > paired_power(exact - 1, sd, effect)
    # paired sd 0.06 and 5 seeds give a small chance of seeing +0.02 mIoU
    assert 0.05 < paired_power(5, 0.06, 0.02) < 0.15


def _evaluation(score: float, identity: float, kinds, images=2):
    conditions = {k: {"3": {"psnr": score}} for k in kinds}
    return {"metric": "psnr", "clean": {"psnr": score + 10}, "corruptions": conditions,
            "mean_corrupted": {"psnr": score}, "identity": {"mean_corrupted": {"psnr": identity}},
            "per_image": {"clean": [score + 10] * images, **{f"{k}/3": [score] * images for k in kinds}}}


def _fake_runs(config, out, scores, identity=20.0):
    """result.json files for every pilot run: ``scores[name]`` dB on development (seed s adds 0.01 s)."""
    for name in config.run_names():
        for seed in config.pilot:
            folder = run_dir(out, name, seed)
            folder.mkdir(parents=True)
            result = {"name": name, "seed": seed, "fingerprint": config.fingerprint(name, seed), "steps": 2,
                      "train_seconds": 1.0, "splits": {"development": _evaluation(
                          scores.get(name, 20.0) + 0.01 * seed, identity, config.kinds["development"])}}
            (folder / "result.json").write_text(json.dumps(result))


def test_the_gate_stops_a_broken_regime(tmp_path):
    """A network that does not beat the degraded input by 1 dB (as after 0 steps: the identity) is no
    regime for a comparison: the study stops with "regime invalid" and the numbers, no table."""
    config = StudyConfig.from_dict(tiny_study())
    _fake_runs(config, tmp_path, {"plain": 20.4, "quarf": 21.0, "static": 20.0})
    gate = regime_gate(config, tmp_path)
    assert not gate["valid"] and gate["reason"].startswith("regime invalid: plain scores 20.41 dB")
    (tmp_path / "decisions.json").write_text(json.dumps({"gate": gate}))
    text = write_study_report(config, tmp_path)["markdown"]
    assert "regime invalid" in text and "## Test" not in text and "## Power" not in text
    assert text.index("## Diagnostics") < text.index("## Regime gate")  # the diagnostics come first


def test_the_gate_passes_a_working_regime_and_segmentation_needs_augmentation_above_the_clean_base(tmp_path):
    config = StudyConfig.from_dict(tiny_study())
    _fake_runs(config, tmp_path, {"plain": 21.5})
    assert regime_gate(config, tmp_path)["valid"]
    seg = tmp_path / "seg"
    # the gate's rule follows the task, which the base network's model type decides
    config.base = {**{k: v for k, v in config.base.items() if k != "task"}, "model": {"type": "segformer"}}
    for name, score in (("base", 0.5), ("plain", 0.4)):
        for seed in config.pilot:
            folder = run_dir(seg, name, seed)
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps({"splits": {"development": {"mean_corrupted": {"mIoU": score}}}}))
    gate = regime_gate(config, seg)
    assert not gate["valid"] and "not above the clean-trained base's 0.500" in gate["reason"]


def test_oracle_no_better_than_static_says_no_receptive_field_choice_mattered(tmp_path):
    config = StudyConfig.from_dict(tiny_study())
    _fake_runs(config, tmp_path, {"plain": 21.5, "oracle": 21.02, "static": 21.0, "expert_d1": 21.0,
                                  "expert_d2": 21.3})
    (tmp_path / "decisions.json").write_text(json.dumps({"gate": regime_gate(config, tmp_path)}))
    text = write_study_report(config, tmp_path)["markdown"]
    assert "no receptive-field choice at this placement mattered" in text
    assert "perfect quality information gained less than the effect looked for here" in text
    assert "| shot_noise/3 | 21.015 [-0.300, -0.300] | 21.315 | expert_d2 |" in text  # per (kind, severity) cell


def test_no_image_is_shared_between_development_and_test():
    config = StudyConfig.from_dict(tiny_study())
    check_separate_images(config)  # the photo split: different photographs
    # the same photographs named two ways are caught by photo identity, though the random crops differ
    same = {"type": "photos", "photos": ["motorcycle_left", "motorcycle_right"], "crops": "random", "num_samples": 2,
            "crop_size": 32, "seed": 7}
    config.images = {"development": config.images["development"], "test": same}
    with pytest.raises(ValueError, match=r"images: development and test images share the photos \['motorcycle_left'"):
        check_separate_images(config)
    # segmentation: quarf-shapes seeds may not be the training seed of any run
    base = {"task": "segmentation", "data": {"train": {"type": "quarf-shapes", "num_samples": 4, "size": 32, "seed": 0}}}
    with pytest.raises(ValueError, match="images.development.seed: 3000 is a training seed"):
        StudyConfig.from_dict(tiny_study(base=base, images={"development": {"type": "quarf-shapes", "seed": 3000},
                                                            "test": {"type": "quarf-shapes", "seed": 2000000}}))


def test_a_near_copy_of_a_test_photo_is_caught(tmp_path):
    """A test photo cropped by 4% a side, halved and saved as JPEG quality 60 is another file with
    other pixels; the near-duplicate check still calls it the same photograph. Two views of one
    scene (the motorcycle pair) and different photographs stay below the threshold."""
    from PIL import Image

    from quarf_hf.data.photos import photo_names, photo_path
    from quarf_hf.study.runner import NEAR_DUPLICATE, photo_similarity

    with Image.open(photo_path("chelsea")) as image:
        w, h = image.size
        image.convert("RGB").crop((w // 25, h // 25, w - w // 25, h - h // 25)).resize((w // 2, h // 2)).save(
            tmp_path / "cat.jpg", quality=60)
    config = StudyConfig.from_dict(tiny_study())
    config.images = {"development": {"type": "images", "path": str(tmp_path), "crop_size": 32}, "test": config.images["test"]}
    with pytest.raises(ValueError, match="development photo 'cat.jpg' and test photo 'chelsea' are near-duplicates"):
        check_separate_images(config)
    names = photo_names()
    assert max(photo_similarity(photo_path(a), photo_path(b)) for a in names for b in names if a < b) < NEAR_DUPLICATE


def test_each_seed_draws_its_own_training_crops():
    """The photos spec has no seed of its own: seed k's runs train on other random crops than seed 0's
    (compared on the crops themselves), and the arms of one seed on the same ones."""
    from quarf_hf.data import load_dataset_spec

    config = StudyConfig.from_dict(tiny_study())
    crops = lambda name, seed: load_dataset_spec(config.train_dict(name, seed, "-")["data"]["train"])[0]["labels"]  # noqa: E731
    assert not torch.equal(crops("quarf", 0), crops("quarf", 1))
    assert torch.equal(crops("quarf", 1), crops("static", 1))


def test_every_setting_that_shapes_the_test_is_frozen(tmp_path):
    """A second run into the same folder with other arms, secondary, severities, pilot_seeds,
    min_seeds or max_seeds is refused; workers and max_minutes may change."""
    from quarf_hf.study.config import UNFROZEN

    config = StudyConfig.from_dict(tiny_study())
    assert set(config.frozen()) >= {"arms", "secondary", "severities", "pilot_seeds", "min_seeds", "max_seeds",
                                    "declared_sd", "precondition", "test_kinds", "effect", "primary"}
    assert set(UNFROZEN) == {"workers", "max_minutes"}
    (tmp_path / "study.json").write_text(json.dumps(config.to_dict()))
    from quarf_hf.study import run_study

    for change in ({"max_seeds": 5}, {"secondary": []}, {"severities": [2]}, {"pilot_seeds": 5}):
        with pytest.raises(ValueError, match="OUT: .* holds a study with another " + next(iter(change))):
            run_study(StudyConfig.from_dict(tiny_study(**change)), tmp_path, progress=False)


def test_pilot_seeds_are_never_test_seeds():
    config = StudyConfig.from_dict(tiny_study(pilot_seeds=5))
    assert config.pilot == [0, 1, 2, 3, 4]
    assert config.test_seeds(5) == [5, 6, 7, 8, 9] and not set(config.pilot) & set(config.test_seeds(40))


def test_every_arm_starts_from_its_seeds_base(tmp_path):
    """Fine-tuning protocol: each arm's model.base is the seed's base network; the arms differ from
    each other in the model only; scratch has no base."""
    config = StudyConfig.from_dict(tiny_study())
    runs = {n: config.train_dict(n, 3, tmp_path) for n in config.run_names()}
    assert "base" not in runs["base"]["model"]
    for name in ("plain", "static", "film", "quarf", "oracle", "expert_d2"):
        assert runs[name]["model"]["base"] == str(tmp_path / "runs" / "base" / "seed3" / "train" / "model")
    differing = {k for k in runs["quarf"] if runs["quarf"][k] != runs["static"][k]}
    assert differing == {"model", "output_dir"}
    assert runs["expert_d2"]["model"]["quarf"]["experts"] == [[3, 2]]
    scratch = StudyConfig.from_dict(tiny_study(protocol="scratch"))
    assert "base" not in scratch.train_dict("quarf", 3, tmp_path)["model"]


def _save(model, folder):
    model.save_pretrained(folder)
    return str(folder)


def test_restoration_arms_equal_the_base_at_step_0(tmp_path):
    from quarf_hf.training.models import build_model

    torch.manual_seed(0)
    base = build_model(restoration_model("none")).eval()
    with torch.no_grad():  # a trained base: its output is no longer the identity
        base.conv_out.weight.normal_(0, 0.05)
    folder = _save(base, tmp_path / "base")
    images = torch.rand(2, 3, 32, 32)
    expected = base(images).reconstruction
    assert not torch.allclose(expected, images)
    for section in (restoration_model("route"), restoration_model("film"),
                    restoration_model(quality={"type": "constant", "dim": 36}), restoration_model("none")):
        arm = build_model({**section, "base": folder}).eval()
        assert arm.config.conditioning == section["config"]["conditioning"]
        assert torch.allclose(arm(images).reconstruction, expected, atol=1e-6), section


def test_segmentation_arms_equal_the_base_at_step_0(tmp_path):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from quarf_hf.training.models import build_model

    torch.manual_seed(0)
    base = SegformerForSemanticSegmentation(SegformerConfig(**segformer_config(), num_labels=3)).eval()
    folder = _save(base, tmp_path / "base")
    images = torch.rand(2, 3, 32, 32)
    expected = base(pixel_values=images).logits
    for conditioning, quality in (("route", "brisque"), ("film", "brisque"), ("route", {"type": "constant", "dim": 36})):
        section = {"type": "quarf_segformer", "quality": quality, "config": {"conditioning": conditioning},
                   "quarf": {"num_groups": 2}, "base": folder}
        arm = build_model(section, num_labels=3).eval()
        assert arm.config.conditioning == conditioning
        assert torch.allclose(arm(pixel_values=images).logits, expected, atol=1e-5), conditioning


def test_report_readings_say_no_difference_plainly():
    stat = {"mean": 0.01, "sd": 0.02, "n": 6, "ci95": [-0.01, 0.03]}
    text = reading("quarf - static", stat, 0.1, "dB")
    assert "no difference detected" in text and "includes zero" in text and "smaller than the effect" in text
    assert "neither shown nor ruled out" in reading("quarf - static", {**stat, "ci95": [-0.2, 0.3]}, 0.1, "dB")
    assert "quarf loses" in reading("quarf - static", {**stat, "mean": -0.1, "ci95": [-0.2, -0.05]}, 0.1, "dB")
    assert "quarf is better" in reading("quarf - static", {**stat, "ci95": [0.02, 0.3]}, 0.1, "dB")


def test_oracle_vector_is_family_and_severity():
    from quarf_hf.study.config import ORACLE_DIM
    from quarf_hf.study.evaluation import oracle_vector

    assert oracle_vector("shot_noise", 3).tolist() == oracle_vector("speckle_noise", 3).tolist()  # unseen kind, same family
    assert oracle_vector(None, None).sum() == 1 and oracle_vector("fog", 5).sum() == 2 and ORACLE_DIM == 10
    assert corruption_family("fog") == "weather"


@pytest.mark.parametrize("name", ["study-restoration.yaml", "study.yaml"])
def test_shipped_study_configs_load(name):
    from quarf_hf.study import load_study_config

    config = load_study_config(REPO / "configs" / name)
    assert config.protocol == "finetune" and config.primary == ["quarf", "static"]
    assert {"film", "quarf", "static", config.control} <= set(config.arms)
    assert config.diagnostic_names()[-1] == "oracle"


@pytest.mark.slow
def test_a_tiny_study_runs_end_to_end(tmp_path):
    from quarf_hf.study import run_study

    config = StudyConfig.from_dict(tiny_study(min_gain_over_identity=-100, diagnostics={}, max_seeds=2,
                                              arms={"plain": {}, "quarf": {"model": restoration_model()},
                                                    "static": {"model": restoration_model(quality={"type": "constant",
                                                                                                    "dim": 36})}},
                                              secondary=[]))
    decisions = run_study(config, tmp_path, progress=False)
    assert decisions["gate"]["valid"] and decisions["test_seeds"] == [4, 5]
    text = write_study_report(config, tmp_path)["markdown"]
    assert "| quarf - static | primary |" in text
    # block usage (the plain arm has no block) and the primary comparison per test cell
    assert "| quarf | " in text.split("Block usage per arm")[1] and "| plain | " not in text.split("Block usage per arm")[1].split("## ")[0]
    assert "| speckle_noise/3 |" in text.split("per test cell")[1]
    # the bootstrap's statistic on every image once is the interval's (mean_corrupted), on real results
    from quarf_hf.study.report import split_score
    from quarf_hf.study.runner import load_result

    evaluation = load_result(tmp_path, "quarf", 4)["splits"]["test"]
    everything = np.arange(len(evaluation["clusters"]))
    assert split_score(evaluation, "psnr", everything) == pytest.approx(evaluation["mean_corrupted"]["psnr"], abs=1e-9)
    assert set(evaluation["clusters"]) == {"chelsea", "coffee"}


def test_a_best_receptive_field_that_changes_by_less_than_the_effect_is_nothing_to_route_for(tmp_path):
    """expert_d1 best on shot noise and expert_d2 on defocus blur, each by 0.05 dB: the best changes,
    but picking it per cell gains 0.025 dB on average over the cells (0 on one, 0.05 on the other),
    less than the declared effect (0.1 dB), and the report says so."""
    config = StudyConfig.from_dict(tiny_study())
    _fake_runs(config, tmp_path, {"plain": 21.5, "expert_d1": 21.0, "expert_d2": 21.0})
    for name, kind in (("expert_d1", "shot_noise"), ("expert_d2", "defocus_blur")):
        for seed in config.pilot:
            path = run_dir(tmp_path, name, seed) / "result.json"
            result = json.loads(path.read_text())
            for metrics in result["splits"]["development"]["corruptions"][kind].values():
                metrics["psnr"] += 0.05
            path.write_text(json.dumps(result))
    (tmp_path / "decisions.json").write_text(json.dumps({"gate": regime_gate(config, tmp_path)}))
    report = write_study_report(config, tmp_path)
    single = report["diagnostics"]["single_experts"] if "diagnostics" in report else None
    text = report["markdown"]
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| shot_noise/3 |")
            or line.startswith("| defocus_blur/3 |")}
    assert rows["| shot_noise/3"].endswith("| expert_d1 |") and rows["| defocus_blur/3"].endswith("| expert_d2 |")
    assert "would gain +0.025 dB over expert_d1" in text and "mattered by that much" in text
    assert single is None or abs(single["pick_gain"] - 0.025) < 1e-6


# --- statistics, each against an independent reference -----------------------------------------------


def test_power_is_finite_where_scipys_noncentral_t_is_nan_and_seeds_start_at_the_floor():
    """At n = 2, sd 0.016, effect 0.1 scipy's noncentral t gives NaN; the power is checked against a
    simulation of the paired t-test itself (200,000 draws), and the seeds needed are then 3, never
    fewer than ``minimum``."""
    from scipy import stats

    generator = np.random.default_rng(0)
    for n, sd, effect in [(2, 0.016, 0.1), (3, 0.1, 0.1), (4, 0.05, 0.03)]:
        d = generator.normal(effect, sd, size=(200_000, n))
        t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
        simulated = float((np.abs(t) > stats.t.ppf(0.975, n - 1)).mean())
        assert abs(paired_power(n, sd, effect) - simulated) < 0.005, (n, sd, effect)
    assert seeds_needed(0.016, 0.1) == 3
    assert seeds_needed(0.016, 0.1, minimum=5) == 5


def test_planning_sd_is_the_chi_square_upper_bound():
    """The one-sided 80% upper bound of a normal sd, checked by simulation: in 80% of samples of n
    values the bound is above the true sd (coverage), and it is the closed form of scipy's chi2."""
    from quarf_hf.study.power import sd_upper_bound

    generator = np.random.default_rng(1)
    samples = generator.normal(0.0, 2.0, size=(40_000, 4)).std(1, ddof=1)
    covered = np.mean([sd_upper_bound(s, 4) >= 2.0 for s in samples[:4000]])
    assert abs(covered - 0.8) < 0.02
    assert sd_upper_bound(1.0, 4) == pytest.approx(math.sqrt(3 / 1.0052), rel=1e-3)  # chi2(3) 20% point 1.0052


def test_minimum_detectable_effect_inverts_the_power():
    """The effect detected with 80% power by n seeds: the power there is 0.8, and for many seeds it
    approaches the normal approximation's (z_0.975 + z_0.8) sd / sqrt(n)."""
    from quarf_hf.study.power import minimum_detectable_effect

    for n, sd in [(3, 0.1), (12, 0.05), (400, 1.0)]:
        assert paired_power(n, sd, minimum_detectable_effect(n, sd)) == pytest.approx(0.8, abs=1e-6)
    assert minimum_detectable_effect(400, 1.0) == pytest.approx((1.959964 + 0.841621) / 20, rel=0.01)


def test_holm_and_sign_test_match_their_references():
    """Holm's adjustment on a hand-worked example (sorted p 0.01, 0.02, 0.04 times 3, 2, 1, kept
    monotone); the sign test against scipy's binomial with ties left out."""
    from scipy import stats

    from quarf_hf.study.power import holm, sign_test

    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    result = sign_test([0.1, 0.2, 0.0, -0.1, 0.3, 0.0, 0.2])
    assert (result["won"], result["lost"], result["tied"]) == (4, 1, 2)
    assert result["p"] == pytest.approx(stats.binomtest(4, 5).pvalue)


def test_cluster_bootstrap_resamples_photos_and_shares_the_draw_across_seeds():
    """Two known answers. (a) Two photos whose crops all score 0 and 1: the mean over a draw of two
    photos is 0, 0.5 or 1 (1/4, 1/2, 1/4), so the 95% interval is [0, 1] (an image-level bootstrap
    of 16 crops would give about [0.25, 0.75]). (b) Every seed scores the same crops identically
    (crossed design) and each crop is its own photo: the draws' sd is the plain bootstrap's,
    sd(x) / sqrt(n), not the sd(x) / sqrt(n * seeds) of resampling each seed's crops apart."""
    from quarf_hf.study.power import cluster_bootstrap_draws, cluster_bootstrap_interval

    values = np.array([0.0] * 8 + [1.0] * 8)
    clusters = ["a"] * 8 + ["b"] * 8
    statistic = lambda idx: np.repeat(values[idx].mean(), 4)  # noqa: E731 - four seeds, one answer
    assert cluster_bootstrap_interval(statistic, 4, clusters, samples=800) == pytest.approx([0.0, 1.0])
    x = np.random.default_rng(2).normal(size=30)
    draws = cluster_bootstrap_draws(lambda idx: np.repeat(x[idx].mean(), 8), 8, range(30), samples=3000)
    assert draws.std() == pytest.approx(x.std() / math.sqrt(30), rel=0.1)


def test_seeds_are_planned_on_the_pilot_sds_upper_bound_or_a_declared_sd():
    """4 pilot seeds with sd 0.05: the plan uses 0.05 * sqrt(3 / chi2_0.2(3)) (scipy), the seeds the
    exact power needs at that sd (never below min_seeds), and reports the effect those seeds detect;
    a declared sd replaces the bound."""
    from scipy import stats

    from quarf_hf.study.runner import plan_seeds

    config = StudyConfig.from_dict(tiny_study(min_seeds=3, max_seeds=40))
    plan = plan_seeds(config, 0.05)
    bound = 0.05 * math.sqrt(3 / stats.chi2.ppf(0.2, 3))
    assert plan["planning_sd"] == pytest.approx(bound) and plan["seeds_needed"] == seeds_needed(bound, 0.1)
    assert paired_power(plan["planned"], bound, plan["detectable"]) == pytest.approx(0.8, abs=1e-6)
    declared = plan_seeds(StudyConfig.from_dict(tiny_study(min_seeds=3, declared_sd=0.001)), 0.05)
    assert declared["planning_sd"] == 0.001 and declared["planned"] == 3 and declared["planning_sd_from"] == "declared"


def _cell_evaluation(scores: dict) -> dict:
    return {"corruptions": {k: {s: {"psnr": v} for s, v in by.items()} for k, by in scores.items()}}


def test_precondition_passes_only_when_experts_differ_by_cell_in_every_seed_and_the_oracle_gains():
    """Hand-made pilot results (4 seeds, cells noise/1 and blur/5), each answer worked out by hand:
    d1 leads on noise by 1.0 and d8 on blur by 0.4 in every seed: the contrast margin is 0.4 and
    picking per cell gains (0 + 0.4) / 2 = 0.2 over d1 (best on average); with one seed where d8's
    lead on blur is -0.1 the margin fails; an oracle behind static in one seed fails (b)."""
    from quarf_hf.study.diagnostics import oracle_gain, precondition, single_experts

    def experts(blur_lead):
        return {"expert_d1": [_cell_evaluation({"noise": {"1": 30.0}, "blur": {"5": 20.0}})] * 4,
                "expert_d8": [_cell_evaluation({"noise": {"1": 29.0}, "blur": {"5": 20.0 + lead}}) for lead in blur_lead]}

    static = [_cell_evaluation({"noise": {"1": 29.5}, "blur": {"5": 20.1}})] * 4
    oracle = [_cell_evaluation({"noise": {"1": 30.0}, "blur": {"5": 20.3 + 0.01 * k}}) for k in range(4)]
    single = single_experts(experts([0.4] * 4), "psnr")
    assert single["best"] == {"noise/1": "expert_d1", "blur/5": "expert_d8"} and single["overall"] == "expert_d1"
    assert single["pick_gain"] == pytest.approx(0.2)
    gain = oracle_gain(oracle, static, "psnr")
    assert gain["won"] == 4 and gain["mean"] == pytest.approx((0.5 + 0.215) / 2)
    result = precondition(single, gain, margin=0.05, pick_gain=0.1)
    assert result["passed"] and result["contrast"]["margin"] == pytest.approx(0.4)
    mixed = precondition(single_experts(experts([0.5, 0.5, 0.5, -0.1]), "psnr"), gain, margin=0.05, pick_gain=0.1)
    assert not mixed["passed"] and "in the worst seed" in mixed["reason"]
    behind = oracle_gain([oracle[0]] * 3 + [_cell_evaluation({"noise": {"1": 29.0}, "blur": {"5": 20.0}})], static, "psnr")
    failed = precondition(single, behind, margin=0.05, pick_gain=0.1)
    assert not failed["passed"] and "oracle beats static in 3 of 4 seeds" in failed["reason"]
    assert precondition(single, gain, margin=0.05, pick_gain=0.3)["reason"].startswith("picking the best expert")


def test_a_failed_precondition_stops_the_study_before_any_test_seed_and_says_so(tmp_path):
    """Single experts that agree in every cell: the study's decisions hold the failed precondition,
    no power is planned, and the report gives the table and says it stops."""
    from quarf_hf.study.runner import pilot_diagnostics, proceeds

    config = StudyConfig.from_dict(tiny_study(precondition={"margin": 0.05, "pick_gain": 0.1}))
    _fake_runs(config, tmp_path, {"plain": 21.5, "oracle": 21.2, "static": 21.0})
    decisions = {"gate": regime_gate(config, tmp_path), "precondition": pilot_diagnostics(config, tmp_path)["precondition"]}
    assert decisions["gate"]["valid"] and not proceeds(decisions)
    (tmp_path / "decisions.json").write_text(json.dumps(decisions))
    text = write_study_report(config, tmp_path)["markdown"]
    assert "## Precondition" in text and "| best expert differs between cells in every seed | no |" in text
    assert "The study stops here, before any test seed" in text and "## Power" not in text


def test_block_usage_is_the_blocks_change_and_switching_it_off_is_the_identity_block():
    """The hook's contribution equals |gate * branch(x)| / |x| computed by calling the block directly,
    0 at the identity start; with the block switched off the output equals the same model with its
    gate (residual_scale) set to zero."""
    from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel
    from quarf_hf.study.evaluation import watch_blocks

    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(backbone="dncnn", block_out_channels=[8],
                                                         quarf={"num_groups": 2, "experts": [[3, 1], [3, 4]]})).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    x, q = torch.rand(2, 3, 24, 24), torch.randn(2, 36)
    seen = []
    with torch.no_grad(), watch_blocks(model, seen):
        model(x, quality_features=q)
        hidden = model.conv_in(x)
        out = model.quarf(hidden, q)
    expected = ((out - hidden).flatten(1).norm(dim=1) / hidden.flatten(1).norm(dim=1)).tolist()
    assert seen[:2] == pytest.approx(expected) and min(expected) > 0
    with torch.no_grad(), watch_blocks(model, switch_off=True):
        off = model(x, quality_features=q).reconstruction
    model.quarf.residual_scale.data.zero_()
    with torch.no_grad():
        assert torch.allclose(off, model(x, quality_features=q).reconstruction)
        fresh = []
        with watch_blocks(model, fresh):
            model(x, quality_features=q)
    assert fresh == [0.0, 0.0]


def test_the_studies_numbers_live_in_one_place_and_the_pages_agree():
    """The demos' readings are built from quarf_hf/study/results.json, and every mean and interval
    there appears in docs/study.md as written (two decimals or three), so a changed result
    cannot leave a stale copy in the code or the page."""
    from quarf_hf.demo.restoration import reading
    from quarf_hf.study.results import results_sentence, study_results

    assert results_sentence("restoration") in reading(400)
    page = (REPO / "docs" / "study.md").read_text()
    for task, study in study_results().items():
        for c in study["comparisons"]:
            interval = f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]"
            assert f"{c['mean']:+.3f}" in page and interval in page and interval in results_sentence(task), c


def test_segmentation_bootstrap_statistic_is_the_pooled_miou_of_the_interval():
    """Per-image confusion matrices summed over the drawn images give the mIoU that
    SegmentationMeter gives when fed those images' pixels (repeats included), and on every image
    once the split's mean_corrupted: the bootstrap and the t-interval read one statistic."""
    from quarf_hf.evaluation.metrics import SegmentationMeter
    from quarf_hf.study.report import split_score

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 3, 8, 8), generator=generator)  # 2 conditions x 3 images
    predictions = torch.randint(0, 4, (2, 3, 8, 8), generator=generator)

    def meter_of(condition, images):
        meter = SegmentationMeter(4, ignore_index=255)
        for i in images:
            meter.update(predictions[condition, i], labels[condition, i])
        return meter

    keys = ["a/1", "b/1"]
    evaluation = {"per_image": {"clean": [0, 0, 0], **{k: [0, 0, 0] for k in keys}}, "ignore_index": 255,
                  "per_image_confusion": {k: [meter_of(c, [i]).confusion.tolist() for i in range(3)]
                                          for c, k in enumerate(keys)},
                  "mean_corrupted": {"mIoU": float(np.mean([meter_of(c, range(3)).compute()["mIoU"] for c in range(2)]))}}
    assert split_score(evaluation, "mIoU", np.arange(3)) == pytest.approx(evaluation["mean_corrupted"]["mIoU"])
    drawn = [0, 0, 2]
    expected = np.mean([meter_of(c, drawn).compute()["mIoU"] for c in range(2)])
    assert split_score(evaluation, "mIoU", np.array(drawn)) == pytest.approx(expected)


def test_the_receptive_field_study_config_is_the_declared_regime(tmp_path):
    """configs/study-receptive-field.yaml: DnCNN arms from scratch, FiLM after the static mixture
    with the routed block's parameters (within 10%, counted on the built models), training kinds
    tested on the test photos and unseen kinds as their own split, severities 1-5, 4 pilot seeds,
    0.1 dB, a precondition; a test job evaluates both splits on the test images."""
    from quarf_hf.models import QuarfRestorationConfig, QuarfRestorationModel
    from quarf_hf.study import load_study_config
    from quarf_hf.study.runner import make_job

    config = load_study_config(REPO / "configs" / "study-receptive-field.yaml")
    assert config.protocol == "scratch" and config.test_kinds == "training" and config.severities == [1, 2, 3, 4, 5]
    assert config.pilot_seeds >= 4 and config.effect == 0.1 and config.precondition
    counts = {}
    for arm in ("static", "quarf", "film"):
        model = config.train_dict(arm, 0, tmp_path)["model"]
        assert model["config"]["backbone"] == "dncnn"
        built = QuarfRestorationModel(QuarfRestorationConfig(quality=model["quality"], quarf=model["quarf"],
                                                             **model["config"]))
        counts[arm] = sum(p.numel() for p in built.quarf.parameters())
    assert abs(counts["film"] - counts["quarf"]) <= 0.1 * counts["quarf"]
    job = make_job(config, tmp_path, "quarf", 7, config.test_splits)
    assert job["evaluate"]["unseen"] == {"kinds": config.kinds["unseen"], "images": config.images["test"]}
    assert job["evaluate"]["test"]["kinds"] == config.kinds["augmentation"]


def test_the_study_task_is_the_base_networks_model_type():
    """``base`` needs no ``task:``: the base network's model type gives the study's metric and gate
    (restoration: PSNR, scored against the degraded input's identity row); a repeated one agrees."""
    base = {k: v for k, v in tiny_study()["base"].items() if k != "task"}
    config = StudyConfig.from_dict(tiny_study(base=base))
    assert config.task.name == "restoration" and config.task.metric == "psnr" and config.task.identity_row
    assert StudyConfig.from_dict(tiny_study()).task is config.task

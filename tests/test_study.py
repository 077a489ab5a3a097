"""``quarf-hf study``: disjoint kinds enforced, equal steps per arm, resume, time cap, report contents."""

import json
from pathlib import Path

import pytest
import yaml

from quarf_hf.cli import main
from quarf_hf.study import StudyAborted, StudyConfig, build_report, corruption_family, run_study, write_study_report
from quarf_hf.study.runner import plan_jobs, run_dir
from tiny_models import segformer_config

REPO = Path(__file__).resolve().parents[1]
TINY = segformer_config()
KINDS = {"augmentation": ["gaussian_noise", "gaussian_blur", "rain", "contrast"],
         "development": ["speckle_noise", "zoom_blur", "raindrops", "brightness"],
         "test": ["shot_noise", "defocus_blur", "fog", "jpeg_compression"]}


def tiny_study(**changes) -> dict:
    study = {
        "base": {"task": "segmentation", "max_steps": 3, "batch_size": 4,
                 "data": {"train": {"type": "quarf-shapes", "num_samples": 16, "size": 32, "seed": 0},
                          "validation": {"type": "quarf-shapes", "num_samples": 2, "size": 32, "seed": 10000}}},
        "arms": {"augmentation": {"model": {"type": "segformer", "config": TINY}, "augmentation": {"policy": "degradation"}},
                 "static": {"model": {"type": "quarf_segformer", "quality": "constant", "config": TINY,
                                      "quarf": {"num_groups": 2}}, "augmentation": {"policy": "degradation"}}},
        "kinds": KINDS, "severities": [2], "seeds": [0, 1], "min_seeds": 2,
        "comparisons": [["static", "augmentation"]], "workers": 2,
    }
    study.update(changes)
    return study


def write_config(tmp_path, study) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.mark.parametrize("change, message", [
    ({"kinds": {**KINDS, "test": ["speckle_noise", "defocus_blur", "fog", "jpeg_compression"]}},
     "development and test must be disjoint, both contain ['speckle_noise']"),
    ({"kinds": {**KINDS, "development": ["speckle_noise", "zoom_blur", "brightness"]}},
     "kinds.development: must span the families"),
    ({"kinds": {"augmentation": KINDS["augmentation"], "test": KINDS["test"]}}, "kinds: expected a mapping with exactly"),
    ({"seeds": [0, 1, 2], "min_seeds": 5}, "seeds: expected at least 5 seeds, found 3"),
    ({"arms": {"a": {"max_steps": 5}, "b": {}}}, "arms.a: ['max_steps'] must be the same for every arm"),
    ({"arms": {"a": {"augmentation": {"policy": "degradation", "corruptions": ["fog"]}}, "b": {}}},
     "arms.a.augmentation.corruptions: ['fog'] are not in kinds.augmentation"),
    ({"kinds": {**KINDS, "test": ["shot_noise", "defocus_blur", "fog", "jpeg_compresion"]}}, "kinds.test: unknown"),
    ({"base": {"task": "segmentation", "data": {"train": {"type": "quarf-shapes", "num_samples": 4}}}},
     "base.data.validation: expected a dataset spec"),
    ({"base": {"task": "segmentation", "max_minutes": 3, "data": {"train": {"type": "quarf-shapes", "num_samples": 4},
                                                                  "validation": {"type": "quarf-shapes", "num_samples": 2}}}},
     "base: ['max_minutes'] are set by the study"),
])
def test_bad_configs_are_refused_before_any_run(tmp_path, capsys, change, message):
    path = write_config(tmp_path, tiny_study(**change))
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not out.exists()


def test_families_and_default_study_config():
    """The built-in study's kinds: three disjoint sets, each with a noise, blur, weather and digital kind."""
    from quarf_hf.study import load_study_config

    config = load_study_config(REPO / "configs" / "study.yaml")
    assert len(config.seeds) >= 5 and set(config.arms) >= {"baseline", "augmentation", "static", "quarf"}
    for names in config.kinds.values():
        assert {corruption_family(n) for n in names} == {"noise", "blur", "weather", "digital"}
    assert config.evaluate == ["development"]  # the test kinds are for the final report only
    # The static control has the QuARF arm's block and parameter shapes; only the router's input differs.
    static, quarf = config.arms["static"]["model"], config.arms["quarf"]["model"]
    assert static["quarf"] == quarf["quarf"] and static["config"] == quarf["config"]
    assert static["quality"]["type"] == "constant" and static["quality"]["dim"] == 36


def test_static_control_has_the_quarf_parameters_and_a_fixed_mixture():
    """Same parameter names and shapes as BRISQUE-QuARF; routing identical for any two images."""
    import torch

    from quarf_hf.training.models import build_model

    section = {"type": "quarf_segformer", "config": TINY, "quarf": {"num_groups": 2}}
    static = build_model({**section, "quality": {"type": "constant", "dim": 36}}, num_labels=3).eval()
    quarf = build_model({**section, "quality": "brisque"}, num_labels=3)
    shapes = lambda m: {k: tuple(p.shape) for k, p in m.named_parameters() if p.requires_grad}  # noqa: E731
    assert shapes(static) == shapes(quarf)
    images = torch.stack([torch.zeros(3, 32, 32), torch.rand(3, 32, 32)])
    routing = static(pixel_values=images).routing_weights
    assert torch.equal(routing[0], routing[1])


def test_runs_have_equal_recipes_but_for_model_and_augmentation():
    config = StudyConfig.from_dict(tiny_study())
    first, second = (config.train_dict(arm, 3, "x") for arm in ("augmentation", "static"))
    differing = {k for k in first if first[k] != second[k]}
    assert differing == {"model"}  # both augment: the same kinds, filled in from kinds.augmentation
    assert first["augmentation"]["corruptions"] == KINDS["augmentation"]
    assert first["max_steps"] == 3 and first["max_minutes"] is None and first["seed"] == 3
    assert first["data"]["train"]["seed"] == 3000  # each seed its own scenes, shared by the arms


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "out"
    config = StudyConfig.from_dict(tiny_study())
    counts = run_study(config, out, progress=False)
    return config, out, counts


def test_every_arm_trains_the_same_steps_and_the_report_is_written(finished_study):
    config, out, counts = finished_study
    assert counts == {"done": 4, "skipped": 0}
    for arm in config.arms:
        for seed in config.seeds:
            result = json.loads((run_dir(out, arm, seed) / "result.json").read_text())
            assert result["steps"] == 3 and set(result["splits"]) == {"development"}
            assert list(result["splits"]["development"]["corruptions"]) == KINDS["development"]
            assert (run_dir(out, arm, seed) / "train" / "model" / "config.json").is_file()
    written = write_study_report(config, out)
    for name in ("report.md", "report.json", "arms.png", "routing_static_development.png"):
        assert (out / name).is_file(), name
    assert "| static - augmentation | development |" in written["markdown"]
    assert written["report"]["steps"] == [3]


def test_a_rerun_resumes_and_test_kinds_are_evaluated_without_training_again(finished_study):
    config, out, _ = finished_study
    assert plan_jobs(config, out) == []  # nothing left
    kept = run_dir(out, "augmentation", 0) / "result.json"
    before = kept.stat().st_mtime_ns
    (run_dir(out, "static", 1) / "result.json").unlink()  # as if stopped before this run finished
    jobs = plan_jobs(config, out)
    assert [(j["arm"], j["seed"], j["train"]) for j in jobs] == [("static", 1, True)]
    assert run_study(config, out, progress=False) == {"done": 1, "skipped": 3}
    assert kept.stat().st_mtime_ns == before
    # Adding the test kinds later: every run is evaluated from its saved model, none retrained.
    model = run_dir(out, "augmentation", 0) / "train" / "model" / "model.safetensors"
    model_time = model.stat().st_mtime_ns
    with_test = StudyConfig.from_dict({**config.to_dict(), "evaluate": ["development", "test"]})
    assert {j["train"] for j in plan_jobs(with_test, out)} == {False}
    run_study(with_test, out, progress=False)
    assert model.stat().st_mtime_ns == model_time
    result = json.loads(kept.read_text())
    assert set(result["splits"]) == {"development", "test"} and result["steps"] == 3
    assert build_report(with_test, out)["splits"] == ["development", "test"]


def test_a_changed_recipe_is_not_mixed_with_old_results(finished_study, tmp_path):
    config, out, _ = finished_study
    changed = StudyConfig.from_dict({**config.to_dict(), "arms": {**config.arms, "static": {
        **config.arms["static"], "model": {**config.arms["static"]["model"], "quarf": {"num_groups": 4}}}}})
    with pytest.raises(ValueError, match="different recipe for arm 'static'"):
        plan_jobs(changed, out)


def test_the_time_cap_aborts_the_study_and_leaves_no_half_run(tmp_path):
    config = StudyConfig.from_dict(tiny_study(max_minutes=0.002, seeds=[5, 6]))
    with pytest.raises(StudyAborted, match="no arm was cut short"):
        run_study(config, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("runs/*/*/result.json"))


def fake_result(config, arm, seed, clean, dev, routing=None):
    """A result.json as a worker writes it, with chosen scores (for checking the statistics)."""
    def metrics(value):
        return {"mIoU": value, **({"routing": routing} if routing else {})}
    kinds = {k: {"2": metrics(dev)} for k in config.kinds["development"]}
    return {"arm": arm, "seed": seed, "fingerprint": config.fingerprint(arm, seed), "steps": 3, "clean": metrics(clean),
            "splits": {"development": {"metric": "mIoU", "corruptions": kinds, "mean_corrupted": metrics(dev),
                                       "severities": [2], "experts": [3, 5]}}}


def test_report_statistics_match_an_independent_computation(tmp_path):
    """Means, sds, the paired t-interval and seeds won against numpy/scipy on chosen numbers."""
    import numpy as np
    from scipy import stats

    config = StudyConfig.from_dict(tiny_study(seeds=[0, 1, 2, 3, 4], min_seeds=5))
    a = [0.50, 0.55, 0.52, 0.58, 0.51]
    b = [0.49, 0.56, 0.50, 0.55, 0.50]
    for seed in config.seeds:
        for arm, values in (("static", a), ("augmentation", b)):
            folder = run_dir(tmp_path, arm, seed)
            folder.mkdir(parents=True)
            routing = [0.25 + 0.01 * seed, 0.75 - 0.01 * seed] if arm == "static" else None
            (folder / "result.json").write_text(json.dumps(fake_result(config, arm, seed, values[seed], values[seed] / 2,
                                                                       routing)))
    report = build_report(config, tmp_path)
    assert report["arms"]["static"]["clean"]["mean"] == pytest.approx(np.mean(a))
    assert report["arms"]["static"]["clean"]["sd"] == pytest.approx(np.std(a, ddof=1))
    diff = np.array(a) - np.array(b)
    paired = report["comparisons"]["static - augmentation"]["clean"]
    low, high = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert paired["mean"] == pytest.approx(diff.mean()) and paired["sd"] == pytest.approx(diff.std(ddof=1))
    assert paired["ci95"] == pytest.approx([low, high]) and paired["won"] == 4
    assert report["arms"]["static"]["development/zoom_blur"]["mean"] == pytest.approx(np.mean(a) / 2)
    assert set(report["routing"]) == {"static"} and sorted(report["routing"]["static"]) == ["0", "1", "2", "3", "4"]
    assert report["routing"]["static"]["3"]["development"]["severity"]["2"] == pytest.approx([0.28, 0.72])
    text = write_study_report(config, tmp_path)["markdown"]
    assert f"| static | {np.mean(a):.3f} ± {np.std(a, ddof=1):.3f} |" in text
    assert f"| static - augmentation | clean | {diff.mean():+.3f} ± {diff.std(ddof=1):.3f} | [{low:+.3f}, {high:+.3f}] | 4/5 |" in text
    assert "| 3 | 0.28/0.72 | 0.28/0.72 |" in text  # routing per seed, clean and severity 2

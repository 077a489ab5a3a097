"""Bad command lines, one table for every command (predict, evaluate, train, build, convert-contrique,
degradations, bench): each ends with exit status 2 and one ``quarf-hf CMD: error: ...`` line naming the
argument or file, and writes nothing. The rows are ``(id, argv builder(world, out) -> list, text the one error
line must contain)``; ``out`` is a fresh path, and rows that put a file in its way say so with a ``FILE:``
prefix in the id. bad_input_world.py says what every row asserts."""

import json
from pathlib import Path

import pytest
import yaml

from bad_input_world import assert_cli_refuses, billion_laughs, train_config, yaml_file

STUDY = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "study.yaml").read_text())


def _study_argv(w, out, name, arms):
    """``quarf-hf study`` on configs/study.yaml with ``arms`` put first (``arms`` maps name -> recipe, or
    ``"same"`` for a copy of the first built-in arm's recipe)."""
    first = next(iter(STUDY["arms"].values()))
    arms = {key: first if value == "same" else value for key, value in arms.items()}
    path = yaml_file(w, name, {**STUDY, "arms": {**arms, **STUDY["arms"]}})
    return ["study", str(path), "--out", str(out)]


def _model_config_argv(w, out, name, changes):
    config = train_config()
    config["model"] = {**config["model"], "config": {**config["model"]["config"], **changes}}
    return _train_argv(w, out, name, config)


def _train_argv(w, out, name, content, extra=()):
    if isinstance(content, dict):
        content = json.loads(json.dumps(content).replace("{OUT}", str(out)))
    path = yaml_file(w, name, content)
    return ["train", str(path), *extra]


def _used(out, *names) -> list:
    """Fills ``out`` with an earlier run's outputs: ``name/`` a folder with a file, ``name->`` a link to a
    folder elsewhere, else a file. Returns [] (rows add the argv to it)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name.endswith("/"):
            (out / name).mkdir()
            (out / name / "config.json").write_text("{}")
        elif name.endswith("->"):
            target = out.parent / f"elsewhere-{name[:-2]}"
            target.mkdir()
            (out / name[:-2]).symlink_to(target, target_is_directory=True)
        else:
            (out / name).write_text("an earlier run's")
    return []


CLI = [
    # predict
    ("predict missing model", lambda w, o: ["predict", str(w["root"] / "nope_model"), str(w["good"]), "--out", str(o)], "MODEL"),
    ("predict model is a file", lambda w, o: ["predict", str(w["a_file"]), str(w["good"]), "--out", str(o)], "MODEL"),
    ("predict no config", lambda w, o: ["predict", str(w["noconfig_model"]), str(w["good"]), "--out", str(o)], "config.json"),
    ("predict bad config json", lambda w, o: ["predict", str(w["badjson_model"]), str(w["good"]), "--out", str(o)], "config.json"),
    ("predict config type", lambda w, o: ["predict", str(w["badtype_model"]), str(w["good"]), "--out", str(o)], "config.json"),
    ("predict config value", lambda w, o: ["predict", str(w["badquarf_model"]), str(w["good"]), "--out", str(o)], "config.json"),
    ("predict no weights", lambda w, o: ["predict", str(w["noweights_model"]), str(w["good"]), "--out", str(o)], "noweights_model"),
    ("predict truncated weights", lambda w, o: ["predict", str(w["truncated_model"]), str(w["good"]), "--out", str(o)], "truncated_model/model.safetensors"),
    ("predict random weights", lambda w, o: ["predict", str(w["random_model"]), str(w["good"]), "--out", str(o)], "random_model/model.safetensors"),
    ("predict missing image", lambda w, o: ["predict", str(w["seg_dir"]), str(w["root"] / "nope.png"), "--out", str(o)], "nope.png"),
    ("predict text png", lambda w, o: ["predict", str(w["seg_dir"]), str(w["text_png"]), "--out", str(o)], "text.png"),
    ("predict empty png", lambda w, o: ["predict", str(w["seg_dir"]), str(w["empty_png"]), "--out", str(o)], "empty.png"),
    ("predict truncated png", lambda w, o: ["predict", str(w["seg_dir"]), str(w["truncated_png"]), "--out", str(o)], "truncated.png"),
    ("predict truncated second", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), str(w["truncated_png"]), "--out", str(o)], "truncated.png"),
    ("predict tiny second", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), str(w["tiny"]), "--out", str(o)], "tiny.png"),
    ("predict folder as image", lambda w, o: ["predict", str(w["seg_dir"]), str(w["root"] / "images"), "--out", str(o)], "images"),
    ("predict duplicate stems", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), str(w["dup"]), "--out", str(o)], "good"),
    ("predict severity 9", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), "--corruption", "gaussian_noise", "--severity", "9", "--out", str(o)], "--severity"),
    ("predict severity alone", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), "--severity", "2", "--out", str(o)], "--severity"),
    ("predict corruption", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), "--corruption", "sunburn", "--out", str(o)], "--corruption"),
    ("predict device", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), "--device", "quantum", "--out", str(o)], "--device"),
    ("FILE: predict out is a file", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), "--out", str(o)], "--out"),
    ("predict damaged weights", lambda w, o: ["predict", str(w["damaged_model"]), str(w["good"]), "--out", str(o)], "model.safetensors: not a readable safetensors file"),
    ("predict badly typed config", lambda w, o: ["predict", str(w["typed_model"]), str(w["good"]), "--out", str(o)], "hidden_sizes"),
    ("predict unknown type", lambda w, o: ["predict", str(w["custom_model"]), str(w["good"]), "--out", str(o)], "Pass --trust-remote-code"),
    ("predict small second image", lambda w, o: ["predict", str(w["seg_dir"]), str(w["good"]), str(w["tiny"]), "--out", str(o)], "tiny.png' is 8x8 pixels"),
    ("predict restoration text png", lambda w, o: ["predict", str(w["res_dir"]), str(w["good"]), str(w["text_png"]), "--out", str(o)], "text.png"),
    ("predict 169 MP png", lambda w, o: ["predict", str(w["seg_dir"]), str(w["huge_png"]), "--out", str(o)], "expected at most 50,000,000 pixels"),
    ("predict 169 MP second", lambda w, o: ["predict", str(w["res_dir"]), str(w["good"]), str(w["huge_png"]), "--out", str(o)], "huge.png"),
    ("predict million experts", lambda w, o: ["predict", str(w["experts_model"]), str(w["good"]), "--out", str(o)], "experts_model/config.json"),
    ("predict huge widths", lambda w, o: ["predict", str(w["wide_model"]), str(w["good"]), "--out", str(o)], "hidden_sizes[0]: expected an integer from 1 to 16384"),
    ("predict pickled bin", lambda w, o: ["predict", str(w["pickled_model"]), str(w["good"]), "--out", str(o)], "pickled_model/pytorch_model.bin: refused"),
    ("predict size mismatch", lambda w, o: ["predict", str(w["mismatch_model"]), str(w["good"]), "--out", str(o)], "mismatch_model/model.safetensors"),
    # evaluate
    ("evaluate severities 0", lambda w, o: ["evaluate", str(w["seg_dir"]), "--severities", "0", "--out", str(o)], "--severities"),
    ("evaluate severities text", lambda w, o: ["evaluate", str(w["seg_dir"]), "--severities", "high", "--out", str(o)], "--severities"),
    ("evaluate severities range", lambda w, o: ["evaluate", str(w["seg_dir"]), "--severities", "5-1", "--out", str(o)], "--severities"),
    ("evaluate corruption", lambda w, o: ["evaluate", str(w["seg_dir"]), "--corruptions", "sunburn", "--out", str(o)], "--corruptions"),
    ("evaluate corruptions empty", lambda w, o: ["evaluate", str(w["seg_dir"]), "--corruptions", ",", "--out", str(o)], "--corruptions"),
    ("evaluate batch size", lambda w, o: ["evaluate", str(w["seg_dir"]), "--batch-size", "0", "--out", str(o)], "--batch-size"),
    ("evaluate num samples", lambda w, o: ["evaluate", str(w["seg_dir"]), "--num-samples", "0", "--out", str(o)], "--num-samples"),
    ("evaluate image size", lambda w, o: ["evaluate", str(w["seg_dir"]), "--image-size", "-3", "--out", str(o)], "--image-size"),
    ("evaluate missing dataset", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", "/nonexistent/ds", "--out", str(o)], "--dataset"),
    ("evaluate json dataset", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", "{bad json", "--out", str(o)], "--dataset"),
    ("evaluate json dataset type", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", '{"type": "coco"}', "--out", str(o)], "type"),
    ("evaluate dataset split", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", str(w["ds_good"]), "--split", "test", "--out", str(o)], "split"),
    ("evaluate truncated image", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", str(w["ds_truncated"]), "--split", "train", "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(o)], "b.png"),
    ("evaluate text png", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", str(w["ds_text"]), "--split", "train", "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(o)], "b.png"),
    ("evaluate mask size", lambda w, o: ["evaluate", str(w["seg_dir"]), "--dataset", str(w["ds_masksize"]), "--split", "train", "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(o)], "b.png"),
    ("evaluate missing model", lambda w, o: ["evaluate", str(w["root"] / "nope_model"), "--out", str(o)], "MODEL"),
    ("evaluate truncated weights", lambda w, o: ["evaluate", str(w["truncated_model"]), "--num-samples", "2", "--out", str(o)], "model.safetensors"),
    ("evaluate random weights", lambda w, o: ["evaluate", str(w["random_model"]), "--num-samples", "2", "--out", str(o)], "model.safetensors"),
    ("evaluate no weights", lambda w, o: ["evaluate", str(w["noweights_model"]), "--num-samples", "2", "--out", str(o)], "noweights_model"),
    ("evaluate one-label model on shapes", lambda w, o: ["evaluate", str(w["root"] / "seg_one_label"), "--out", str(o)], "--dataset"),
    ("evaluate device", lambda w, o: ["evaluate", str(w["seg_dir"]), "--device", "gpu:x", "--out", str(o)], "--device"),
    ("evaluate unknown type", lambda w, o: ["evaluate", str(w["custom_model"]), "--dataset", "quarf-shapes", "--out", str(o)], "Pass --trust-remote-code"),
    ("evaluate damaged weights", lambda w, o: ["evaluate", str(w["damaged_model"]), "--dataset", "quarf-shapes", "--out", str(o)], "not a readable safetensors file"),
    ("FILE: evaluate out is a file", lambda w, o: ["evaluate", str(w["seg_dir"]), "--out", str(o)], "--out"),
    # train
    ("train missing config", lambda w, o: ["train", str(w["root"] / "nope.yaml")], "nope.yaml"),
    ("train config folder", lambda w, o: ["train", str(w["root"] / "images")], "CONFIG"),
    ("train yaml syntax", lambda w, o: _train_argv(w, o, "syntax.yaml", "task: segmentation\nmodel: {type: quarf_segformer\nmax_steps: 1\n"), "line"),
    ("train yaml tabs", lambda w, o: _train_argv(w, o, "tabs.yaml", "task: segmentation\n\tmax_steps: 1\n"), "line"),
    ("train yaml list", lambda w, o: _train_argv(w, o, "list.yaml", "- 1\n- 2\n"), "mapping"),
    ("train yaml binary", lambda w, o: ["train", str(w["random_tar"])], "random.tar"),
    ("train empty yaml", lambda w, o: _train_argv(w, o, "empty.yaml", ""), "data.train"),
    ("train unknown key", lambda w, o: _train_argv(w, o, "unknown.yaml", train_config(epochs=2)), "epochs"),
    ("train batch text", lambda w, o: _train_argv(w, o, "batch.yaml", train_config(batch_size="eight")), "batch_size"),
    ("train data number", lambda w, o: _train_argv(w, o, "data.yaml", train_config(data=3)), "data"),
    ("train seed text", lambda w, o: _train_argv(w, o, "seed.yaml", train_config(seed="x")), "seed"),
    ("train model type", lambda w, o: _train_argv(w, o, "type.yaml", train_config(model={"type": "unet"})), "model.type"),
    ("train lr list", lambda w, o: _train_argv(w, o, "lr.yaml", train_config(learning_rate=[1, 2])), "learning_rate"),
    ("train resume nothing", lambda w, o: _train_argv(w, o, "resume.yaml", train_config(), ["--resume"]), "--resume"),
    ("FILE: train output_dir is a file", lambda w, o: _train_argv(w, o, "outfile.yaml", train_config()), "output_dir"),
    ("train truncated image", lambda w, o: _train_argv(w, o, "trunc.yaml", train_config(data={"train": {"type": "folder", "path": str(w["ds_truncated"]), "split": "train"}})), "b.png"),
    ("train text png", lambda w, o: _train_argv(w, o, "text.yaml", train_config(data={"train": {"type": "folder", "path": str(w["ds_text"]), "split": "train"}})), "b.png"),
    ("train mask size", lambda w, o: _train_argv(w, o, "mask.yaml", train_config(data={"train": {"type": "folder", "path": str(w["ds_masksize"]), "split": "train"}})), "b.png"),
    ("train bad validation", lambda w, o: _train_argv(w, o, "val.yaml", train_config(data={"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32}, "validation": {"type": "folder", "path": str(w["ds_text"]), "split": "train"}})), "data.validation"),
    ("train missing dataset", lambda w, o: _train_argv(w, o, "nods.yaml", train_config(data={"train": {"type": "folder", "path": "/nonexistent/ds"}})), "path"),
    ("train batch too large", lambda w, o: _train_argv(w, o, "big.yaml", train_config(batch_size=64)), "batch_size"),
    ("train billion laughs seed", lambda w, o: _train_argv(w, o, "laughs_seed.yaml", billion_laughs("seed")), "expands its YAML aliases"),
    ("train billion laughs output_dir", lambda w, o: _train_argv(w, o, "laughs_out.yaml", billion_laughs("output_dir")), "expands its YAML aliases"),
    ("train num_labels text", lambda w, o: _model_config_argv(w, o, "labels.yaml", {"num_labels": "three"}), "model.config.num_labels"),
    ("train hidden_sizes text", lambda w, o: _model_config_argv(w, o, "hidden.yaml", {"hidden_sizes": "abc"}), "hidden_sizes"),
    ("train million experts", lambda w, o: _train_argv(w, o, "experts.yaml", train_config(model={**train_config()["model"], "quarf": {"num_groups": 2, "experts": [[3, 1]] * 1000}})), "experts: expected at most 64"),
    # train-quality and study
    ("train-quality billion laughs", lambda w, o: ["train-quality", str(yaml_file(w, "laughs_quality.yaml", billion_laughs("seed")))], "expands its YAML aliases"),
    ("study billion laughs", lambda w, o: ["study", str(yaml_file(w, "laughs_study.yaml", billion_laughs("seed"))), "--out", str(o)], "expands its YAML aliases"),
    ("study arm escapes --out", lambda w, o: _study_argv(w, o, "escape.yaml", {"../../escaped": {}}), "arms: expected a plain name"),
    ("study arm not text", lambda w, o: _study_argv(w, o, "arm_number.yaml", {1: {}}), "arms: expected a name (text)"),
    ("study identical arms", lambda w, o: _study_argv(w, o, "same_arms.yaml", {"twin": "same"}), "the same settings as"),
    # build
    ("build unknown variant", lambda w, o: ["build", "quarf-vit-b9", "--out", str(o)], "CONFIG"),
    ("build base missing", lambda w, o: ["build", "quarf-restoration-small", "--base", str(w["root"] / "nope_base"), "--out", str(o)], "--base"),
    ("build base truncated", lambda w, o: ["build", "quarf-restoration-small", "--base", str(w["truncated_model"]), "--out", str(o)], "--base"),
    ("build yaml syntax", lambda w, o: ["build", str(yaml_file(w, "hub_bad.yaml", "name: x\nmodel: [\n")), "--out", str(o)], "line"),
    ("build yaml list", lambda w, o: ["build", str(yaml_file(w, "hub_list.yaml", "- a\n")), "--out", str(o)], "mapping"),
    ("build model kind", lambda w, o: ["build", str(yaml_file(w, "hub_kind.yaml", {"name": "x", "model": "vit"})), "--out", str(o)], "model"),
    ("build hidden sizes", lambda w, o: ["build", str(yaml_file(w, "hub_sizes.yaml", {"name": "x", "model": "quarf_segformer", "segformer": {"hidden_sizes": "big"}})), "--out", str(o)], "hidden_sizes"),
    ("build quality", lambda w, o: ["build", "quarf-restoration-small", "--quality", "./niqe", "--out", str(o)], "spec"),
    ("build contrique text base", lambda w, o: ["build", "contrique-resnet50", "--base", str(w["text_tar"]), "--out", str(o)], "text.tar"),
    ("build billion laughs", lambda w, o: ["build", str(yaml_file(w, "hub_laughs.yaml", billion_laughs("name"))), "--out", str(o)], "expands its YAML aliases"),
    # convert-contrique
    ("convert missing", lambda w, o: ["convert-contrique", str(w["root"] / "nope.tar"), str(o)], "nope.tar"),
    ("convert text", lambda w, o: ["convert-contrique", str(w["text_tar"]), str(o)], "text.tar"),
    ("convert random bytes", lambda w, o: ["convert-contrique", str(w["random_tar"]), str(o)], "random.tar"),
    ("convert code", lambda w, o: ["convert-contrique", str(w["evil_tar"]), str(o)], "evil.tar"),
    ("convert wrong keys", lambda w, o: ["convert-contrique", str(w["wrong_tar"]), str(o)], "checkpoint"),
    ("convert folder", lambda w, o: ["convert-contrique", str(w["root"] / "images"), str(o)], "CHECKPOINT"),
    # degradations gallery
    ("gallery missing image", lambda w, o: ["degradations", "--image", str(w["root"] / "nope.png"), "--out", str(o / "g.png")], "nope.png"),
    ("gallery text png", lambda w, o: ["degradations", "--image", str(w["text_png"]), "--out", str(o / "g.png")], "text.png"),
    ("gallery names", lambda w, o: ["degradations", "--image", str(w["good"]), "--names", "sunburn", "--out", str(o / "g.png")], "sunburn"),
    ("gallery size", lambda w, o: ["degradations", "--image", str(w["good"]), "--size", "2", "--out", str(o / "g.png")], "size"),
    ("gallery not png", lambda w, o: ["degradations", "--image", str(w["good"]), "--out", str(o / "g.jpg")], "out_path"),
    # bench
    ("bench unknown", lambda w, o: ["bench", "warp-speed"], "NAME"),
    # used output folders and links in them: refused before any work, the earlier outputs kept
    ("USED: train into a finished run", lambda w, o: _used(o, "model/", "summary.json") + _train_argv(w, o, "used.yaml", train_config()), "--overwrite"),
    ("USED: train model is a link", lambda w, o: _used(o, "model->") + _train_argv(w, o, "link.yaml", train_config()), "does not write through links"),
    ("USED: train --overwrite model is a link", lambda w, o: _used(o, "model->") + _train_argv(w, o, "link2.yaml", train_config(), ["--overwrite"]), "does not write through links"),
    ("USED: train summary is a link", lambda w, o: _used(o, "summary.json->") + _train_argv(w, o, "link3.yaml", train_config(), ["--overwrite"]), "summary.json"),
    ("USED: train-quality into a finished run", lambda w, o: _used(o, "model/", "summary.json") + ["train-quality", str(yaml_file(w, "q_used.yaml", {
        "model": {"config": {"embedding_size": 8, "hidden_sizes": [8, 8, 8, 8], "depths": [1, 1, 1, 1], "projection_dim": 8}},
        "data": {"train": {"type": "quarf-shapes", "num_samples": 8, "size": 72}}, "image_size": 72, "crop_size": 64,
        "corruptions": ["gaussian_noise", "gaussian_blur"], "severities": [3], "batch_size": 4, "max_steps": 1,
        "output_dir": str(o)}))], "--overwrite"),
    ("USED: evaluate into an evaluation", lambda w, o: _used(o, "results.json") + ["evaluate", str(w["seg_dir"]), "--out", str(o)], "--overwrite"),
    ("USED: predict into a prediction", lambda w, o: _used(o, "predictions.json") + ["predict", str(w["seg_dir"]), str(w["good"]), "--out", str(o)], "--overwrite"),
    ("USED: predict onto an output image", lambda w, o: _used(o, "good_mask.png") + ["predict", str(w["seg_dir"]), str(w["good"]), "--out", str(o)], "good_mask.png"),
    ("USED: demo into a demo", lambda w, o: _used(o, "restoration/") + ["demo", "--quick", "--out", str(o)], "--overwrite"),
    ("USED: segmentation demo into a demo", lambda w, o: _used(o, "comparison.json") + ["demo", "--task", "segmentation", "--out", str(o)], "--overwrite"),
    ("USED: build --overwrite over user files", lambda w, o: _used(o, "notes.txt") + ["build", "quarf-restoration-small", "--overwrite", "--out", str(o)], "config.json"),
    ("USED: convert --overwrite over user files", lambda w, o: _used(o, "notes.txt") + ["convert-contrique", str(w["wrong_tar"]), str(o), "--overwrite"], "config.json"),
    ("USED: build into a link", lambda w, o: _used(o, "inner->") + ["build", "quarf-restoration-small", "--out", str(o / "inner")], "does not write through links"),
]


@pytest.mark.parametrize("case", CLI, ids=[row[0] for row in CLI])
def test_cli_refuses(bad_input_world, tmp_path, capsys, case):
    assert_cli_refuses(bad_input_world, tmp_path, capsys, case)

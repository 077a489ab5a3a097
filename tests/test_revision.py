"""Pinned code: ``--revision`` on every command that loads a model from the Hub, per-model revision
settings in the Space, and ``revision=`` in every card's usage snippet."""

import subprocess
import sys

import pytest
import torch

import quarf_hf  # noqa: F401  (registers the Auto classes)
from quarf_hf.cli import build_parser
from quarf_hf.evaluation import loading
from quarf_hf.models.checks import InputError

MODEL_COMMANDS = {
    "predict": ["predict", "org/model", "image.png", "--out", "out"],
    "evaluate": ["evaluate", "org/model", "--out", "out"],
    "evaluate-quality": ["evaluate-quality", "org/model"],
    "build": ["build", "quarf-segformer-b0", "--out", "out", "--base", "nvidia/mit-b0"],
}


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_every_model_loading_command_takes_a_revision(name):
    args = build_parser().parse_args([*MODEL_COMMANDS[name], "--revision", "0123abcd"])
    assert args.revision == "0123abcd"


def test_train_and_build_pin_their_base(tmp_path, monkeypatch):
    """model.revision in a training config (and build --revision) reach the base model's loading."""
    from quarf_hf.hub.build import build
    from quarf_hf.models.modeling_quarf_restoration import QuarfRestorationModel
    from quarf_hf.training import TrainConfig
    from quarf_hf.training.models import build_model
    from test_training import tiny_config

    seen = []
    monkeypatch.setattr(QuarfRestorationModel, "from_pretrained",
                        classmethod(lambda cls, base, **kwargs: seen.append((base, kwargs.get("revision")))))
    build_model({"type": "quarf_restoration", "base": "org/restorer", "revision": "abc123"})
    assert seen == [("org/restorer", "abc123")]
    data = tiny_config(tmp_path)
    data["model"] = {**data["model"], "base": "org/segformer", "revision": "abc123"}
    assert TrainConfig.from_dict(data).model["revision"] == "abc123"
    data["model"] = {k: v for k, v in data["model"].items() if k != "base"}
    with pytest.raises(ValueError, match="model.revision: .* without a model.base"):
        TrainConfig.from_dict(data)
    with pytest.raises(InputError, match="^--revision: 'abc' pins the commit of --base"):
        build("quarf-restoration-small", tmp_path / "out", revision="abc")
    with pytest.raises(InputError, match="^--revision: 'abc' pins a Hub repo's commit, but"):
        build("quarf-restoration-small", tmp_path / "out", base=str(tmp_path), revision="abc")


def test_space_command_takes_one_revision_per_model():
    args = build_parser().parse_args(["space", "--model", "org/q", "--revision", "aaa", "--baseline", "org/b",
                                      "--baseline-revision", "bbb", "--restoration-revision", "ccc"])
    assert (args.revision, args.baseline_revision, args.restoration_revision) == ("aaa", "bbb", "ccc")


def test_the_revision_reaches_transformers(monkeypatch):
    """The config and the weights are read at the same pinned commit."""
    from transformers import AutoConfig, AutoModelForSemanticSegmentation, PretrainedConfig

    seen = {}

    def fake_config_dict(model, **kwargs):  # the consent rule reads config.json's model_type first
        seen["config.json"] = kwargs.get("revision")
        return {"model_type": "quarf_segformer"}, {}

    def fake_config(model, **kwargs):
        seen["config"] = kwargs.get("revision")
        return quarf_hf.QuarfSegformerConfig()

    def fake_model(model, **kwargs):
        seen["model"] = kwargs.get("revision")
        return "loaded"

    monkeypatch.setattr(PretrainedConfig, "get_config_dict", fake_config_dict)
    monkeypatch.setattr(AutoConfig, "from_pretrained", fake_config)
    monkeypatch.setattr(AutoModelForSemanticSegmentation, "from_pretrained", fake_model)
    config = loading.load_model_config("org/model", False, revision="0123abcd")
    assert loading.load_model("org/model", config, revision="0123abcd") == "loaded"
    assert seen == {"config.json": "0123abcd", "config": "0123abcd", "model": "0123abcd"}


def test_a_revision_for_a_local_folder_is_refused_in_one_line(tmp_path):
    with pytest.raises(InputError, match=r"^--revision: 'abc' pins a Hub repo's commit, but .* is a local folder"):
        loading.load_model_config(str(tmp_path), False, revision="abc")
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    result = subprocess.run([sys.executable, "-m", "quarf_hf", "predict", str(tmp_path), str(tmp_path / "x.png"), "--out",
                             str(tmp_path / "out"), "--revision", "abc"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--revision:" in result.stderr and "Traceback" not in result.stderr


def test_space_revisions_come_from_the_environment(monkeypatch, tmp_path):
    from quarf_hf.space import models

    # no demo folders (the restoration pair would come from them) and no models from the environment
    monkeypatch.setenv("QUARF_DEMO_DIR", str(tmp_path / "no-demo"))
    for role in models.ROLES.values():
        monkeypatch.delenv(role.variable, raising=False)
    monkeypatch.setenv("QUARF_REVISION", "q123")
    monkeypatch.setenv("RESTORATION_REVISION", "r456")
    monkeypatch.delenv("BASELINE_REVISION", raising=False)
    assert models.resolve_revisions() == {"quarf": "q123", "restoration": "r456"}
    assert models.resolve_revisions({"quarf": "given"})["quarf"] == "given"  # the argument wins
    calls = []
    monkeypatch.setattr(models, "load_one", lambda role, source, device, revision=None: calls.append((role, revision)))
    models.load_space_models("org/q", "org/b", None, device="cpu")
    assert sorted(calls) == [("baseline", None), ("quarf", "q123")]


@pytest.mark.parametrize("kind", ["quarf_segformer", "segformer", "quarf_restoration", "contrique", "quarf_adapter"])
def test_card_snippets_pin_a_revision(kind):
    from quarf_hf.hub.model_card import usage_snippet

    snippet = usage_snippet(kind, "org/model", revision="0123abcd")
    assert 'REVISION = "0123abcd"' in snippet and "revision=REVISION" in snippet
    assert "commit hash" in usage_snippet(kind, "org/model")  # unknown commit: the card says to pin one


def test_pinned_revision_loads_that_commits_weights(local_hub, tmp_path):
    """A real Hub round trip: a repo with two commits; --revision picks the first one's weights."""
    from quarf_hf import QuarfRestorationConfig, QuarfRestorationModel

    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], norm_num_groups=4))
    model.save_pretrained(tmp_path / "v1")
    local_hub.publish(tmp_path / "v1", "quarf-test/pinned")
    target = local_hub.mirrors / "models" / "quarf-test" / "pinned"
    first = subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.strip()
    with torch.no_grad():
        model.conv_out.bias.fill_(0.25)
    model.save_pretrained(target)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-C", str(target)]
    subprocess.run(git + ["commit", "-qam", "v2"], check=True)
    code = (
        "import json, quarf_hf\n"
        "from quarf_hf.evaluation.loading import load_model, load_model_config\n"
        "biases = {}\n"
        f"for revision in ({first!r}, None):\n"
        "    config = load_model_config('quarf-test/pinned', False, revision=revision)\n"
        "    model = load_model('quarf-test/pinned', config, revision=revision)\n"
        "    biases[str(revision)] = float(model.conv_out.bias[0])\n"
        "print(json.dumps(biases))\n"
    )
    biases = local_hub.run(code, block_quarf_hf=False, cwd=tmp_path)
    assert biases[first] == 0.0 and biases["None"] == 0.25

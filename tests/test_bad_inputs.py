"""Every bad input refused up front, in one line (issue 16): a table of bad inputs across the API and
the CLI.

Each API row asserts the exception type, that its message is one line naming the argument or
file, and that the output path it was given was not created. Each CLI row runs ``quarf_hf.cli.main``
in this process and asserts exit status 2, exactly one stderr line ``quarf-hf CMD: error: ...``
naming the argument or file, no traceback, and that nothing was written (the output folder is
absent, or the file that stood in its way is unchanged). Tiny models and files are made once per
module. ``test_table_size`` reports the counts by entry point.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import quarf_hf  # noqa: F401 - registers the Auto classes
from quarf_hf import (ContriqueConfig, ContriqueModel, QuARF, QuarfRestorationConfig, QuarfRestorationModel,
                      QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation, build_quality_extractor,
                      extract_quality)
from quarf_hf.cli import main
from quarf_hf.models.quarf import QuarfConfig

TINY_SEG = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
                decoder_hidden_size=16)
TINY_CONTRIQUE = dict(hidden_sizes=[8, 16, 16, 16], embedding_size=8, depths=[1, 1, 1, 1], projection_dim=8)
TINY_UNET = dict(block_out_channels=[8, 16], norm_num_groups=4)
TRAIN_SEGFORMER = {"hidden_sizes": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
                   "sr_ratios": [2, 1, 1, 1], "decoder_hidden_size": 16}


# ----------------------------------------------------------------------------------------------
# The world: tiny models, images, datasets and files, made once.


def _png(path, size=(40, 40), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


def _truncated_png(path):
    _png(path, (64, 64))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return path


def _pairs(root, items):
    """images/ + masks/ with items: (stem, image writer or None, mask size)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem, kind, mask_size in items:
        image = root / "images" / f"{stem}.png"
        if kind == "good":
            _png(image, (32, 32), seed=len(stem))
        elif kind == "truncated":
            _truncated_png(image)
        elif kind == "text":
            image.write_text("not an image")
        mask = np.zeros(mask_size[::-1], dtype=np.uint8)
        mask[: mask_size[1] // 2] = 1
        mask[0, 0] = 2
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{stem}.png")
    return root


def _copy_model(src, dst, mutate):
    shutil.copytree(src, dst)
    mutate(dst)
    return dst


def _set_config(folder, **changes):
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo planted-code-ran > /dev/null",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    w = {"root": root}
    w["block"] = QuARF(8, quality_dim=4).eval()
    w["hard_block"] = QuARF(8, quality_dim=4, mode="hard").eval()
    w["seg"] = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY_SEG, num_labels=3, quality="brisque")).eval()
    w["res"] = QuarfRestorationModel(QuarfRestorationConfig(**TINY_UNET, quarf={"quality_dim": 36}, quality="brisque")).eval()
    w["contrique"] = ContriqueModel(ContriqueConfig(**TINY_CONTRIQUE)).eval()
    seg_dir, res_dir = root / "seg", root / "res"
    w["seg"].save_pretrained(seg_dir)
    w["res"].save_pretrained(res_dir)
    one_label = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY_SEG, num_labels=1, quality="brisque"))
    one_label.save_pretrained(root / "seg_one_label")
    w["seg_dir"], w["res_dir"] = seg_dir, res_dir
    w["truncated_model"] = _copy_model(seg_dir, root / "truncated_model",
                                       lambda d: open(d / "model.safetensors", "r+b").truncate(200))
    w["random_model"] = _copy_model(seg_dir, root / "random_model",
                                    lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)))
    w["noweights_model"] = _copy_model(seg_dir, root / "noweights_model", lambda d: (d / "model.safetensors").unlink())
    w["noconfig_model"] = _copy_model(seg_dir, root / "noconfig_model", lambda d: (d / "config.json").unlink())
    w["badjson_model"] = _copy_model(seg_dir, root / "badjson_model", lambda d: (d / "config.json").write_text("{oops"))
    w["badtype_model"] = _copy_model(res_dir, root / "badtype_model",
                                     lambda d: _set_config(d, block_out_channels="wide"))
    w["badquarf_model"] = _copy_model(seg_dir, root / "badquarf_model", lambda d: _set_config(d, quarf_stage=9))
    images = root / "images"
    images.mkdir()
    w["good"] = _png(images / "good.png")
    w["good2"] = _png(images / "good2.png", seed=1)
    w["tiny"] = _png(images / "tiny.png", (8, 8))
    w["text_png"] = images / "text.png"
    w["text_png"].write_text("hello, I am not a PNG")
    w["truncated_png"] = _truncated_png(images / "truncated.png")
    w["empty_png"] = images / "empty.png"
    w["empty_png"].write_bytes(b"")
    (images / "dup").mkdir()
    w["dup"] = _png(images / "dup" / "good.png")
    w["a_file"] = root / "a_file.txt"
    w["a_file"].write_text("I am a file")
    # datasets
    w["ds_good"] = _pairs(root / "ds_good", [("a", "good", (32, 32)), ("b", "good", (32, 32))])
    w["ds_truncated"] = _pairs(root / "ds_truncated", [("a", "good", (32, 32)), ("b", "truncated", (64, 64))])
    w["ds_text"] = _pairs(root / "ds_text", [("a", "good", (32, 32)), ("b", "text", (32, 32))])
    w["ds_masksize"] = _pairs(root / "ds_masksize", [("a", "good", (32, 32)), ("b", "good", (16, 16))])
    w["ds_nomask"] = root / "ds_nomask"
    (w["ds_nomask"] / "images").mkdir(parents=True)
    (w["ds_nomask"] / "masks").mkdir()
    _png(w["ds_nomask"] / "images" / "a.png", (32, 32))
    w["ds_unknown"] = root / "ds_unknown"
    w["ds_unknown"].mkdir()
    (w["ds_unknown"] / "readme.txt").write_text("x")
    # checkpoints for convert-contrique
    w["text_tar"] = root / "text.tar"
    w["text_tar"].write_text("not a checkpoint")
    w["random_tar"] = root / "random.tar"
    w["random_tar"].write_bytes(os.urandom(2048))
    w["evil_tar"] = root / "evil.tar"
    torch.save({"encoder.0.weight": Evil()}, w["evil_tar"])
    w["wrong_tar"] = root / "wrong.tar"
    torch.save({"some.weight": torch.zeros(3)}, w["wrong_tar"])
    w["list_tar"] = root / "list.tar"
    torch.save([torch.zeros(3)], w["list_tar"])
    # YAML files
    configs = root / "configs"
    configs.mkdir()
    w["configs"] = configs
    return w


def train_config(w, **changes):
    config = {
        "task": "segmentation",
        "output_dir": "{OUT}",
        "model": {"type": "quarf_segformer", "quality": "brisque", "config": TRAIN_SEGFORMER,
                  "quarf": {"num_groups": 2, "experts": [[3, 1], [3, 2]], "top_k": 2}},
        "data": {"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32, "seed": 0}},
        "max_steps": 1,
        "batch_size": 2,
    }
    for key, value in changes.items():
        if value is _DROP:
            config.pop(key, None)
        else:
            config[key] = value
    return config


_DROP = object()


def yaml_file(w, name, content) -> Path:
    path = w["configs"] / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


# ----------------------------------------------------------------------------------------------
# API rows: (id, entry point, call(w, out), exception type, text the message must contain)

rand = torch.rand


def _seg_forward(pixels, labels=None):
    return lambda w, out: w["seg"](pixel_values=pixels, labels=labels)


def _res_forward(pixels, labels=None):
    return lambda w, out: w["res"](pixel_values=pixels, labels=labels)


def _contrique(pixels):
    return lambda w, out: w["contrique"](pixel_values=pixels)


def _block(x, q=None, hard=False):
    return lambda w, out: w["hard_block" if hard else "block"](x, torch.rand(x.shape[0] if isinstance(x, torch.Tensor) and x.ndim else 1, 4) if q is None else q)


def _pipeline(image):
    def call(w, out):
        from quarf_hf.models.pipeline_quarf_restoration import QuarfImageToImagePipeline

        pipe = QuarfImageToImagePipeline(model=w["res"])
        resolved = image(w) if callable(image) else image
        return pipe(resolved)
    return call


def _quality(images, extractor="brisque"):
    return lambda w, out: extract_quality(images(w) if callable(images) else images, extractor)


def _train_config(**changes):
    def call(w, out):
        from quarf_hf.training import TrainConfig

        data = train_config(w, **changes)
        data["output_dir"] = str(out) if data.get("output_dir") == "{OUT}" else data["output_dir"]
        return TrainConfig.from_dict(data)
    return call


def _dataset(spec):
    def call(w, out):
        from quarf_hf.data import load_dataset_spec

        return load_dataset_spec(spec(w) if callable(spec) else spec)
    return call


def _checked(key, num_labels=None, **kwargs):
    def call(w, out):
        from quarf_hf.data import load_dataset_spec
        from quarf_hf.data.checks import check_items

        spec = {"type": "folder", "path": str(w[key]), "split": "train"}
        if num_labels is not None:
            spec["num_labels"] = num_labels
        return check_items(load_dataset_spec(spec), "dataset", **kwargs)
    return call


def _evaluate(**kwargs):
    def call(w, out):
        from quarf_hf.data import QuarfShapes
        from quarf_hf.evaluation import evaluate_model

        dataset = kwargs.pop("dataset", None)
        dataset = QuarfShapes(num_samples=2, size=32, num_classes=3) if dataset is None else dataset
        return evaluate_model(w["seg"], dataset, progress=False, **kwargs)
    return call


def _convert(key):
    def call(w, out):
        from quarf_hf.hub.convert_contrique import build_contrique_folder

        return build_contrique_folder(out, checkpoint=w[key])
    return call


def _degrade(images, name="gaussian_noise", severity=3):
    def call(w, out):
        from quarf_hf.degradations import degrade

        return degrade(images, name, severity)
    return call


def _gallery(key, **kwargs):
    def call(w, out):
        from quarf_hf.degradations.gallery import make_gallery

        return make_gallery(w[key] if isinstance(key, str) and key in w else key, out / "gallery.png", **kwargs)
    return call


def _hub_config(content, name="variant.yaml"):
    def call(w, out):
        from quarf_hf.hub.build import build

        path = yaml_file(w, name, content)
        return build(path, out)
    return call


img64 = rand(1, 3, 64, 64)
API = [
    # --- QuARF block: forward
    ("block x int64", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int64)), TypeError, "x:"),
    ("block x int32", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int32)), TypeError, "x:"),
    ("block x uint8", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.uint8)), TypeError, "x:"),
    ("block x bool", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.bool)), TypeError, "x:"),
    ("block x complex", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.complex64)), TypeError, "x:"),
    ("block hard x int", "QuARF", _block(torch.ones(1, 8, 6, 6, dtype=torch.int64), hard=True), TypeError, "x:"),
    ("block x 3-D", "QuARF", _block(rand(8, 6, 6)), ValueError, "x:"),
    ("block x 5-D", "QuARF", _block(rand(1, 1, 8, 6, 6)), ValueError, "x:"),
    ("block x list", "QuARF", lambda w, out: w["block"]([[1.0]], rand(1, 4)), ValueError, "x:"),
    ("block x channels", "QuARF", _block(rand(1, 4, 6, 6)), ValueError, "x:"),
    ("block q shape", "QuARF", _block(rand(1, 8, 6, 6), rand(1, 5)), ValueError, "quality_features"),
    ("block q 1-D", "QuARF", _block(rand(1, 8, 6, 6), rand(4)), ValueError, "quality_features"),
    ("block q batch", "QuARF", _block(rand(2, 8, 6, 6), rand(3, 4)), ValueError, "quality_features"),
    ("block q int", "QuARF", _block(rand(1, 8, 6, 6), torch.ones(1, 4, dtype=torch.int64)), TypeError, "quality_features"),
    ("block q complex", "QuARF", _block(rand(1, 8, 6, 6), torch.ones(1, 4, dtype=torch.complex64)), TypeError, "quality_features"),
    ("block q list", "QuARF", _block(rand(1, 8, 6, 6), [[0.0] * 4]), TypeError, "quality_features"),
    # --- QuARF block: construction
    ("block in_channels 0", "QuARF()", lambda w, out: QuARF(0, quality_dim=4), ValueError, "in_channels"),
    ("block in_channels float", "QuARF()", lambda w, out: QuARF(2.5, quality_dim=4), ValueError, "in_channels"),
    ("block groups not dividing", "QuARF()", lambda w, out: QuARF(6, quality_dim=4), ValueError, "num_groups"),
    ("block num_groups 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, num_groups=0), ValueError, "num_groups"),
    ("block num_experts 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, num_experts=0), ValueError, "num_experts"),
    ("block top_k 5", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, top_k=5), ValueError, "top_k"),
    ("block top_k 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, top_k=0), ValueError, "top_k"),
    ("block mode", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, mode="medium"), ValueError, "mode"),
    ("block router", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, router="rnn"), ValueError, "router"),
    ("block hard_gradient", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, hard_gradient="x"), ValueError, "hard_gradient"),
    ("block experts empty", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[]), ValueError, "experts"),
    ("block experts dilation 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[(3, 0)]), ValueError, "experts[0]"),
    ("block experts pair", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, experts=[(3,)]), ValueError, "experts[0]"),
    ("block quality_dim 0", "QuARF()", lambda w, out: QuARF(8, quality_dim=0), ValueError, "quality_dim"),
    ("block residual out", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, out_channels=4, residual=True), ValueError, "residual"),
    ("block unknown kwarg", "QuARF()", lambda w, out: QuARF(8, quality_dim=4, dilation=3), TypeError, "QuARF"),
    ("QuarfConfig unknown key", "QuARF()", lambda w, out: QuarfConfig.from_dict({"colour": 1}), ValueError, "QuarfConfig"),
    # --- CONTRIQUE
    ("contrique int 300", "ContriqueModel", _contrique(torch.full((1, 3, 64, 64), 300, dtype=torch.int64)), ValueError, "pixel_values"),
    ("contrique int negative", "ContriqueModel", _contrique(torch.full((1, 3, 64, 64), -1, dtype=torch.int32)), ValueError, "pixel_values"),
    ("contrique float 0-255", "ContriqueModel", _contrique(img64 * 255), ValueError, "divide by 255"),
    ("contrique float negative", "ContriqueModel", _contrique(img64 - 0.5), ValueError, "pixel_values"),
    ("contrique +inf", "ContriqueModel", _contrique(torch.where(img64 > 0.99, float("inf"), img64)), ValueError, "+inf"),
    ("contrique -inf", "ContriqueModel", _contrique(torch.where(img64 > 0.99, float("-inf"), img64)), ValueError, "-inf"),
    ("contrique NaN", "ContriqueModel", _contrique(torch.where(img64 > 0.99, float("nan"), img64)), ValueError, "NaN"),
    ("contrique complex", "ContriqueModel", _contrique(img64.to(torch.complex64)), TypeError, "pixel_values"),
    ("contrique bool", "ContriqueModel", _contrique(img64 > 0.5), TypeError, "pixel_values"),
    ("contrique 3-D", "ContriqueModel", _contrique(rand(3, 64, 64)), ValueError, "pixel_values"),
    ("contrique channels", "ContriqueModel", _contrique(rand(1, 2, 64, 64)), ValueError, "pixel_values"),
    ("contrique small", "ContriqueModel", _contrique(rand(1, 3, 32, 32)), ValueError, "pixel_values"),
    ("contrique list", "ContriqueModel", _contrique([[0.5]]), TypeError, "pixel_values"),
    # --- restoration
    ("restoration float 0-255", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32) * 255), ValueError, "divide by 255"),
    ("restoration +inf", "QuarfRestorationModel", _res_forward(torch.full((1, 3, 32, 32), float("inf"))), ValueError, "+inf"),
    ("restoration NaN", "QuarfRestorationModel", _res_forward(torch.full((1, 3, 32, 32), float("nan"))), ValueError, "NaN"),
    ("restoration int 256", "QuarfRestorationModel", _res_forward(torch.full((1, 3, 32, 32), 256)), ValueError, "pixel_values"),
    ("restoration complex", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32).to(torch.complex64)), TypeError, "pixel_values"),
    ("restoration bool", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32) > 0.5), TypeError, "pixel_values"),
    ("restoration 3-D", "QuarfRestorationModel", _res_forward(rand(3, 32, 32)), ValueError, "pixel_values"),
    ("restoration channels", "QuarfRestorationModel", _res_forward(rand(1, 1, 32, 32)), ValueError, "pixel_values"),
    ("restoration empty", "QuarfRestorationModel", _res_forward(rand(1, 3, 0, 32)), ValueError, "pixel_values"),
    ("restoration labels shape", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32), rand(1, 3, 16, 16)), ValueError, "labels"),
    ("restoration labels 0-255", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32), rand(1, 3, 32, 32) * 255), ValueError, "labels"),
    ("restoration labels list", "QuarfRestorationModel", _res_forward(rand(1, 3, 32, 32), [1.0]), TypeError, "labels"),
    # --- QuARF-SegFormer
    ("segformer int pixels", "QuarfSegformer", _seg_forward(torch.ones(1, 3, 32, 32, dtype=torch.int64)), TypeError, "pixel_values"),
    ("segformer uint8 pixels", "QuarfSegformer", _seg_forward(torch.ones(1, 3, 32, 32, dtype=torch.uint8)), TypeError, "pixel_values"),
    ("segformer bool pixels", "QuarfSegformer", _seg_forward(torch.ones(1, 3, 32, 32, dtype=torch.bool)), TypeError, "pixel_values"),
    ("segformer complex pixels", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32).to(torch.complex64)), TypeError, "pixel_values"),
    ("segformer NaN pixels", "QuarfSegformer", _seg_forward(torch.full((1, 3, 32, 32), float("nan"))), ValueError, "pixel_values"),
    ("segformer inf pixels", "QuarfSegformer", _seg_forward(torch.full((1, 3, 32, 32), float("inf"))), ValueError, "pixel_values"),
    ("segformer 3-D", "QuarfSegformer", _seg_forward(rand(3, 32, 32)), ValueError, "pixel_values"),
    ("segformer channels", "QuarfSegformer", _seg_forward(rand(1, 4, 32, 32)), ValueError, "pixel_values"),
    ("segformer small", "QuarfSegformer", _seg_forward(rand(1, 3, 16, 16)), ValueError, "pixel_values"),
    ("segformer labels class id", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.full((1, 32, 32), 7)), ValueError, "labels"),
    ("segformer labels negative", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.full((1, 32, 32), -2)), ValueError, "labels"),
    ("segformer labels float", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.zeros(1, 32, 32)), TypeError, "labels"),
    ("segformer labels bool", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.zeros(1, 32, 32, dtype=torch.bool)), TypeError, "labels"),
    ("segformer labels batch", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.zeros(2, 32, 32, dtype=torch.long)), ValueError, "labels"),
    ("segformer labels 2-D", "QuarfSegformer", _seg_forward(rand(1, 3, 32, 32), torch.zeros(32, 32, dtype=torch.long)), ValueError, "labels"),
    # --- configs
    ("segformer config stage", "configs", lambda w, out: QuarfSegformerConfig(**TINY_SEG, quarf_stage=7), ValueError, "quarf_stage"),
    ("segformer config quality", "configs", lambda w, out: QuarfSegformerConfig(**TINY_SEG, quality="./niqe"), ValueError, "quality: no such folder './niqe'"),
    ("restoration config loss", "configs", lambda w, out: QuarfRestorationConfig(**TINY_UNET, loss="l3"), ValueError, "loss"),
    ("restoration config groups", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=[8, 12], norm_num_groups=8), ValueError, "norm_num_groups"),
    ("restoration config widths", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=[], norm_num_groups=4), ValueError, "block_out_channels"),
    ("restoration config quality_dim", "configs", lambda w, out: QuarfRestorationConfig(**TINY_UNET, quarf={"quality_dim": 5}), ValueError, "quality_dim"),
    ("contrique config depths", "configs", lambda w, out: ContriqueConfig(hidden_sizes=[8, 16], depths=[1]), ValueError, "depths"),
    # --- extract_quality / build_quality_extractor
    ("quality empty list", "extract_quality", _quality([]), ValueError, "images"),
    ("quality int32 array 300", "extract_quality", _quality(np.full((32, 32, 3), 300, dtype=np.int32)), ValueError, "images[0]"),
    ("quality float array 0-255", "extract_quality", _quality(np.full((32, 32, 3), 128.0, dtype=np.float32)), ValueError, "divide by 255"),
    ("quality tensor +inf", "extract_quality", _quality(torch.full((3, 32, 32), float("inf"))), ValueError, "+inf"),
    ("quality tensor NaN", "extract_quality", _quality(torch.full((3, 32, 32), float("nan"))), ValueError, "NaN"),
    ("quality complex array", "extract_quality", _quality(np.ones((32, 32, 3), dtype=np.complex64)), TypeError, "images[0]"),
    ("quality complex tensor", "extract_quality", _quality(torch.ones(3, 32, 32, dtype=torch.complex64)), TypeError, "images[0]"),
    ("quality bool array", "extract_quality", _quality(np.ones((32, 32, 3), dtype=bool)), TypeError, "images[0]"),
    ("quality object array", "extract_quality", _quality(np.array([[object()]])), TypeError, "images[0]"),
    ("quality missing path", "extract_quality", _quality(["no-such-image.png"]), FileNotFoundError, "images[0]: no such file 'no-such-image.png'"),
    ("quality five channels", "extract_quality", _quality(torch.rand(5, 32, 32)), ValueError, "images[0]"),
    ("quality too small", "extract_quality", _quality(torch.rand(3, 10, 10)), ValueError, "images[0]"),
    ("quality second bad", "extract_quality", _quality([torch.rand(3, 32, 32), torch.full((3, 32, 32), 2.0)]), ValueError, "images[1]"),
    ("quality bad extractor", "extract_quality", _quality(torch.rand(3, 32, 32), "./niqe"), ValueError, "spec"),
    ("quality extractor number", "build_quality_extractor", lambda w, out: build_quality_extractor(5), ValueError, "spec"),
    ("quality extractor module", "build_quality_extractor", lambda w, out: build_quality_extractor(torch.nn.Linear(2, 2)), ValueError, "spec"),
    # --- image-to-image pipeline
    ("pipeline missing file", "pipeline", _pipeline(lambda w: str(w["root"] / "nope.png")), FileNotFoundError, "nope.png"),
    ("pipeline text png", "pipeline", _pipeline(lambda w: str(w["text_png"])), ValueError, "text.png"),
    ("pipeline float 0-255", "pipeline", _pipeline(np.full((16, 16, 3), 200.0)), ValueError, "divide by 255"),
    ("pipeline NaN array", "pipeline", _pipeline(np.full((16, 16, 3), np.nan)), ValueError, "NaN"),
    ("pipeline int 300", "pipeline", _pipeline(np.full((16, 16, 3), 300, dtype=np.int64)), ValueError, "images"),
    ("pipeline complex", "pipeline", _pipeline(np.ones((16, 16, 3), dtype=np.complex64)), TypeError, "images"),
    ("pipeline bool", "pipeline", _pipeline(np.ones((16, 16, 3), dtype=bool)), TypeError, "images"),
    ("pipeline 4-D array", "pipeline", _pipeline(np.ones((1, 16, 16, 3), dtype=np.uint8)), ValueError, "images"),
    ("pipeline number", "pipeline", _pipeline(5), TypeError, "images"),
    # --- degradations
    ("degrade name", "degrade", _degrade(rand(1, 3, 16, 16), "sunburn"), ValueError, "name"),
    ("degrade severity 0", "degrade", _degrade(rand(1, 3, 16, 16), severity=0), ValueError, "severity"),
    ("degrade severity 6", "degrade", _degrade(rand(1, 3, 16, 16), severity=6), ValueError, "severity"),
    ("degrade 3-D", "degrade", _degrade(rand(3, 16, 16)), ValueError, "images"),
    ("degrade NaN", "degrade", _degrade(torch.full((1, 3, 16, 16), float("nan"))), ValueError, "images"),
    ("gallery missing image", "make_gallery", _gallery("nope.png"), FileNotFoundError, "nope.png"),
    ("gallery size 2", "make_gallery", _gallery("good", size=2), ValueError, "size"),
    ("gallery names empty", "make_gallery", _gallery("good", names=[]), ValueError, "names"),
    # --- data
    ("dataset missing folder", "datasets", _dataset({"type": "folder", "path": "/nonexistent/ds"}), FileNotFoundError, "path"),
    ("dataset unknown type", "datasets", _dataset({"type": "coco"}), ValueError, "type"),
    ("dataset unknown key", "datasets", _dataset({"type": "quarf-shapes", "colour": 1}), ValueError, "colour"),
    ("dataset string", "datasets", _dataset("cityscapes"), ValueError, "spec"),
    ("dataset no masks", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_nomask"])}), FileNotFoundError, "source"),
    ("dataset unknown layout", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_unknown"])}), FileNotFoundError, "source"),
    ("dataset split", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "test"}), ValueError, "split"),
    ("dataset size", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "train", "size": 0}), ValueError, "size"),
    ("dataset label_map", "datasets", _dataset(lambda w: {"type": "folder", "path": str(w["ds_good"]), "split": "train", "label_map": {}}), ValueError, "label_map"),
    ("items class id >= num_labels", "check_items", _checked("ds_good", num_labels=2), ValueError, "a.png"),
    ("items truncated image", "check_items", _checked("ds_truncated"), ValueError, "b.png"),
    ("items text png", "check_items", _checked("ds_text"), ValueError, "b.png"),
    ("items mask size", "check_items", _checked("ds_masksize"), ValueError, "b.png"),
    ("items different sizes", "check_items", _checked("ds_truncated", same_size=True, skip_bad=False), ValueError, "b.png"),
    # --- evaluate_model
    ("evaluate corruption", "evaluate_model", _evaluate(corruptions=["sunburn"]), ValueError, "corruptions"),
    ("evaluate severity 0", "evaluate_model", _evaluate(severities=[0]), ValueError, "severities"),
    ("evaluate severity 6", "evaluate_model", _evaluate(severities=[6]), ValueError, "severities"),
    ("evaluate seed", "evaluate_model", _evaluate(seed="a"), ValueError, "seed"),
    ("evaluate batch size", "evaluate_model", _evaluate(batch_size=0), ValueError, "batch_size"),
    ("evaluate empty dataset", "evaluate_model", _evaluate(dataset=[]), ValueError, "dataset"),
    ("evaluate unsized dataset", "evaluate_model", _evaluate(dataset=5), ValueError, "dataset"),
    # --- training config
    ("train task", "TrainConfig", _train_config(task="detection"), ValueError, "task"),
    ("train model type", "TrainConfig", _train_config(model={"type": "unet"}), ValueError, "model.type"),
    ("train model mismatch", "TrainConfig", _train_config(model={"type": "quarf_restoration"}), ValueError, "model.type"),
    ("train model list", "TrainConfig", _train_config(model=["quarf"]), ValueError, "model"),
    ("train no data", "TrainConfig", _train_config(data={}), ValueError, "data.train"),
    ("train data number", "TrainConfig", _train_config(data=5), ValueError, "data"),
    ("train data.train number", "TrainConfig", _train_config(data={"train": 5}), ValueError, "data.train"),
    ("train seed", "TrainConfig", _train_config(seed="x"), ValueError, "seed"),
    ("train batch size", "TrainConfig", _train_config(batch_size=0), ValueError, "batch_size"),
    ("train batch size text", "TrainConfig", _train_config(batch_size="eight"), ValueError, "batch_size"),
    ("train max steps", "TrainConfig", _train_config(max_steps=-1), ValueError, "max_steps"),
    ("train learning rate", "TrainConfig", _train_config(learning_rate="fast"), ValueError, "learning_rate"),
    ("train learning rate negative", "TrainConfig", _train_config(learning_rate=-1), ValueError, "learning_rate"),
    ("train schedule", "TrainConfig", _train_config(schedule="step"), ValueError, "schedule"),
    ("train precision", "TrainConfig", _train_config(mixed_precision="fp8"), ValueError, "mixed_precision"),
    ("train aug p", "TrainConfig", _train_config(augmentation={"policy": "degradation", "p": 2}), ValueError, "augmentation.p"),
    ("train aug corruption", "TrainConfig", _train_config(augmentation={"policy": "degradation", "corruptions": ["sunburn"]}), ValueError, "augmentation.corruptions"),
    ("train eval severity", "TrainConfig", _train_config(evaluation={"severities": [9]}), ValueError, "evaluation.severities"),
    ("train output_dir number", "TrainConfig", _train_config(output_dir=5), ValueError, "output_dir"),
    ("train grad norm", "TrainConfig", _train_config(max_grad_norm="big"), ValueError, "max_grad_norm"),
    ("train max minutes", "TrainConfig", _train_config(max_minutes="abc"), ValueError, "max_minutes"),
    ("train unknown key", "TrainConfig", _train_config(epochs=3), ValueError, "epochs"),
    ("train model base", "TrainConfig", _train_config(model={"type": "segformer", "base": 5}), ValueError, "model.base"),
    ("train keep checkpoints", "TrainConfig", _train_config(keep_checkpoints=0), ValueError, "keep_checkpoints"),
    ("train log ids", "TrainConfig", _train_config(log_sample_ids="yes"), ValueError, "log_sample_ids"),
    # --- convert-contrique / build (library)
    ("convert text", "build_contrique_folder", _convert("text_tar"), ValueError, "text.tar"),
    ("convert random", "build_contrique_folder", _convert("random_tar"), ValueError, "random.tar"),
    ("convert code", "build_contrique_folder", _convert("evil_tar"), ValueError, "evil.tar"),
    ("convert wrong keys", "build_contrique_folder", _convert("wrong_tar"), ValueError, "checkpoint"),
    ("convert list", "build_contrique_folder", _convert("list_tar"), ValueError, "checkpoint"),
    ("build yaml syntax", "build", _hub_config("name: x\nmodel: [quarf\n"), ValueError, "line"),
    ("build model kind", "build", _hub_config({"name": "x", "model": "vit"}), ValueError, "model"),
    ("build segformer list", "build", _hub_config({"name": "x", "model": "quarf_segformer", "segformer": [1]}), ValueError, "segformer"),
    ("build stage", "build", _hub_config({"name": "x", "model": "quarf_segformer", "segformer": {"hidden_sizes": [8, 16]}, "quarf": {"stage": 5}}), ValueError, "quarf.stage"),
    ("build missing name", "build", _hub_config({"model": "quarf_segformer"}), ValueError, "name"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(world, tmp_path, case):
    _, _, call, error, named = case
    out = tmp_path / "out"
    with pytest.raises(error) as caught:
        call(world, out)
    message = str(caught.value)
    assert named in message, f"message does not name {named!r}: {message}"
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    assert not out.exists(), "something was written"


# ----------------------------------------------------------------------------------------------
# CLI rows: (id, argv builder(w, out) -> list, text the one error line must contain)
# ``out`` is a fresh path; rows that put a file in its way say so with a "FILE:" prefix in the id.


def _train_argv(w, out, name, content, extra=()):
    if isinstance(content, dict):
        content = json.loads(json.dumps(content).replace("{OUT}", str(out)))
    path = yaml_file(w, name, content)
    return ["train", str(path), *extra]


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
    ("predict restoration text png", lambda w, o: ["predict", str(w["res_dir"]), str(w["good"]), str(w["text_png"]), "--out", str(o)], "text.png"),
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
    ("FILE: evaluate out is a file", lambda w, o: ["evaluate", str(w["seg_dir"]), "--out", str(o)], "--out"),
    # train
    ("train missing config", lambda w, o: ["train", str(w["root"] / "nope.yaml")], "nope.yaml"),
    ("train config folder", lambda w, o: ["train", str(w["root"] / "images")], "CONFIG"),
    ("train yaml syntax", lambda w, o: _train_argv(w, o, "syntax.yaml", "task: segmentation\nmodel: {type: quarf_segformer\nmax_steps: 1\n"), "line"),
    ("train yaml tabs", lambda w, o: _train_argv(w, o, "tabs.yaml", "task: segmentation\n\tmax_steps: 1\n"), "line"),
    ("train yaml list", lambda w, o: _train_argv(w, o, "list.yaml", "- 1\n- 2\n"), "mapping"),
    ("train yaml binary", lambda w, o: ["train", str(w["random_tar"])], "random.tar"),
    ("train empty yaml", lambda w, o: _train_argv(w, o, "empty.yaml", ""), "data.train"),
    ("train unknown key", lambda w, o: _train_argv(w, o, "unknown.yaml", train_config(w, epochs=2)), "epochs"),
    ("train batch text", lambda w, o: _train_argv(w, o, "batch.yaml", train_config(w, batch_size="eight")), "batch_size"),
    ("train data number", lambda w, o: _train_argv(w, o, "data.yaml", train_config(w, data=3)), "data"),
    ("train seed text", lambda w, o: _train_argv(w, o, "seed.yaml", train_config(w, seed="x")), "seed"),
    ("train model type", lambda w, o: _train_argv(w, o, "type.yaml", train_config(w, model={"type": "unet"})), "model.type"),
    ("train lr list", lambda w, o: _train_argv(w, o, "lr.yaml", train_config(w, learning_rate=[1, 2])), "learning_rate"),
    ("train resume nothing", lambda w, o: _train_argv(w, o, "resume.yaml", train_config(w), ["--resume"]), "--resume"),
    ("FILE: train output_dir is a file", lambda w, o: _train_argv(w, o, "outfile.yaml", train_config(w)), "output_dir"),
    ("train truncated image", lambda w, o: _train_argv(w, o, "trunc.yaml", train_config(w, data={"train": {"type": "folder", "path": str(w["ds_truncated"]), "split": "train"}})), "b.png"),
    ("train text png", lambda w, o: _train_argv(w, o, "text.yaml", train_config(w, data={"train": {"type": "folder", "path": str(w["ds_text"]), "split": "train"}})), "b.png"),
    ("train mask size", lambda w, o: _train_argv(w, o, "mask.yaml", train_config(w, data={"train": {"type": "folder", "path": str(w["ds_masksize"]), "split": "train"}})), "b.png"),
    ("train bad validation", lambda w, o: _train_argv(w, o, "val.yaml", train_config(w, data={"train": {"type": "quarf-shapes", "num_samples": 8, "size": 32}, "validation": {"type": "folder", "path": str(w["ds_text"]), "split": "train"}})), "data.validation"),
    ("train missing dataset", lambda w, o: _train_argv(w, o, "nods.yaml", train_config(w, data={"train": {"type": "folder", "path": "/nonexistent/ds"}})), "path"),
    ("train batch too large", lambda w, o: _train_argv(w, o, "big.yaml", train_config(w, batch_size=64)), "batch_size"),
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
]


@pytest.mark.parametrize("case", CLI, ids=[row[0] for row in CLI])
def test_cli_refuses(world, tmp_path, capsys, case):
    name, argv, named = case
    out = tmp_path / "out"
    before = None
    if name.startswith("FILE:"):
        out.write_text("precious")
        before = out.read_bytes()
    capsys.readouterr()
    status = main(argv(world, out))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("quarf-hf ")]
    assert status == 2, f"exit {status}; stderr: {captured.err[-500:]}"
    assert len(errors) == 1 and "Traceback" not in captured.err, captured.err[-1000:]
    assert ": error: " in errors[0]
    assert named in errors[0], f"error line does not name {named!r}: {errors[0]}"
    if before is not None:
        assert out.read_bytes() == before, "the file in --out's way was changed"
    else:
        assert not out.exists(), f"something was written: {sorted(p.name for p in out.rglob('*'))[:5]}"


# ----------------------------------------------------------------------------------------------
# Bugs are not user errors: a programming error keeps its traceback.


def test_cli_shows_a_traceback_for_a_bug(monkeypatch):
    import quarf_hf.commands.bench as bench

    def broken(args):
        return len(5)  # TypeError: a bug, not bad input

    monkeypatch.setattr(bench, "run_bench", broken, raising=False)
    from quarf_hf.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["bench", "--list"])
    args.func = broken
    monkeypatch.setattr("quarf_hf.cli.build_parser", lambda: _FixedParser(args))
    with pytest.raises(TypeError, match="has no len"):
        main(["bench"])


class _FixedParser:
    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args

    def print_help(self):
        pass


def test_user_error_classifier():
    """ValueErrors we raise are user errors; Python's own TypeError/ValueError wording is not."""
    from quarf_hf.cli import user_error_message

    def raise_in_quarf(message, kind):
        code = compile(f"raise {kind}({message!r})", quarf_hf.cli.__file__, "exec")
        try:
            exec(code, {})
        except Exception as err:  # noqa: BLE001
            return err

    assert user_error_message(raise_in_quarf("--out: exists", "ValueError")) == "--out: exists"
    assert user_error_message(raise_in_quarf("x: expected a tensor", "TypeError")) == "x: expected a tensor"
    assert user_error_message(raise_in_quarf("unsupported operand type(s) for +: 'int' and 'str'", "TypeError")) is None
    try:
        int("seven")
    except ValueError as err:  # raised by Python, not by quarf_hf, even though it has a colon
        assert user_error_message(err) is None
    assert "a.png" in user_error_message(FileNotFoundError(2, "No such file or directory", "a.png"))


# ----------------------------------------------------------------------------------------------
# The rules that replace refusals: what a bad-looking input now gives.


def test_integer_pixels_are_0_255_in_every_width(world):
    """int32, int64 and uint8 tensors give the features of the same image as floats / 255 (independent reference)."""
    image = torch.randint(0, 256, (1, 3, 64, 64))
    reference = world["contrique"](pixel_values=image.float() / 255).quality_features
    for dtype in (torch.uint8, torch.int32, torch.int64):
        torch.testing.assert_close(world["contrique"](pixel_values=image.to(dtype)).quality_features, reference)
    as_array = extract_quality(image[0].permute(1, 2, 0).numpy().astype(np.int32))
    torch.testing.assert_close(as_array, extract_quality(image[0].float() / 255))


def test_rounding_outside_unit_range_is_clamped(world):
    image = torch.rand(1, 3, 64, 64)
    nudged = image.clone()
    nudged[..., 0, 0] = 1 + 1e-3  # under half an 8-bit step
    clamped = nudged.clamp(0, 1)
    torch.testing.assert_close(world["contrique"](pixel_values=nudged).quality_features,
                               world["contrique"](pixel_values=clamped).quality_features)


def test_hard_mode_empty_batch(world):
    for block in (world["block"], world["hard_block"]):
        out, weights = block(torch.rand(0, 8, 6, 6), torch.rand(0, 4), return_routing=True)
        assert out.shape == (0, 8, 6, 6) and weights.shape == (0, 4, 4)


def test_restoration_runs_below_the_quality_minimum(world):
    """A 5x7 image runs (the quality model sees a documented bicubic upscale); still the identity at init."""
    image = torch.rand(1, 3, 5, 7)
    out = world["res"](pixel_values=image).reconstruction
    assert out.shape == image.shape
    torch.testing.assert_close(out, image)


def test_pipeline_without_trust_remote_code(world):
    from transformers import pipeline

    restorer = pipeline("quarf-restoration", model=str(world["res_dir"]))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    assert restorer(image).size == (11, 9)


def test_evaluate_skip_bad_lists_what_it_skipped(world, tmp_path, capsys):
    out = tmp_path / "eval"
    status = main(["evaluate", str(world["seg_dir"]), "--dataset", str(world["ds_text"]), "--split", "train",
                   "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(out), "--no-progress",
                   "--skip-bad"])
    assert status == 0
    assert "skipped" in capsys.readouterr().err and "b.png" in capsys.readouterr().err + json.dumps(
        json.loads((out / "results.json").read_text()).get("skipped"))
    results = json.loads((out / "results.json").read_text())
    assert results["num_images"] == 1 and results["skipped"][0]["item"].endswith("b.png")


def test_evaluate_takes_the_models_classes(world, tmp_path):
    """ds_good's masks hold classes 0-2 of the 3-class model; a 5-class model is evaluated over its 5 classes."""
    folder = tmp_path / "five"
    QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(**TINY_SEG, num_labels=5, quality="brisque")).save_pretrained(folder)
    out = tmp_path / "eval"
    assert main(["evaluate", str(folder), "--dataset", str(world["ds_good"]), "--split", "train", "--corruptions",
                 "gaussian_noise", "--severities", "1", "--out", str(out), "--no-progress"]) == 0
    assert len(json.loads((out / "results.json").read_text())["clean"]["per_class_iou"]) == 5


def test_table_size():
    """At least 150 bad inputs; the counts by entry point are printed for the issue's closing note."""
    api = Counter(row[1] for row in API)
    cli = Counter(row[1](None, None)[0] if False else _cli_command(row) for row in CLI)
    print("API:", dict(api), "CLI:", dict(cli), "total:", len(API) + len(CLI))
    assert len(API) + len(CLI) >= 150
    assert len({row[0] for row in API}) == len(API) and len({row[0] for row in CLI}) == len(CLI)


def _cli_command(row) -> str:
    name = row[0].removeprefix("FILE: ")
    return name.split()[0]


# ----------------------------------------------------------------------------------------------
# 16-bit PNGs: read as what they show (not as near-white), by the shared image loader
# (quarf_hf/models/image_utils.py), whichever entry point reads them.


def _png16(path, seed=0):
    """A 16-bit greyscale PNG (mode I;16) and its 8-bit equivalent as floats in [0, 1]."""
    values = np.random.default_rng(seed).integers(0, 65536, (40, 40), dtype=np.uint16)
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    return torch.from_numpy(values.astype(np.float64) / 65535).float()


def test_16bit_png_predict_restoration(world, tmp_path):
    """The untrained restoration model is the identity: its output must be the image, not white."""
    grey = _png16(tmp_path / "deep.png")
    assert main(["predict", str(world["res_dir"]), str(tmp_path / "deep.png"), "--out", str(tmp_path / "out")]) == 0
    restored = np.asarray(Image.open(tmp_path / "out" / "deep_restored.png").convert("L"), dtype=np.float64) / 255
    assert np.abs(restored - grey.numpy()).max() <= 1 / 255 + 1e-6


def test_16bit_png_dataset_loader(world, tmp_path):
    from quarf_hf.data import load_dataset_spec

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    grey = _png16(root / "images" / "a.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "masks" / "a.png")
    item = load_dataset_spec({"type": "folder", "path": str(root), "split": "train", "num_labels": 2})[0]
    torch.testing.assert_close(item["pixel_values"][0], grey, atol=1 / 255, rtol=0)


def test_16bit_png_extract_quality(tmp_path):
    grey = _png16(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        features = extract_quality(image)
    torch.testing.assert_close(features, extract_quality(grey[None].expand(3, -1, -1)), atol=1e-3, rtol=1e-3)


def test_train_skip_bad_lists_what_it_skipped(world, tmp_path, capsys):
    from quarf_hf.training import TrainConfig, train

    data = train_config(world, data={"train": {"type": "folder", "path": str(world["ds_text"]), "split": "train",
                                              "num_labels": 3}}, batch_size=1)
    data["output_dir"] = str(tmp_path / "run")
    summary = train(TrainConfig.from_dict(data), skip_bad=True)
    assert summary["steps"] == 1
    assert [Path(entry["item"].split()[-1]).name for entry in summary["skipped"]] == ["b.png"]
    assert "skipped data.train" in capsys.readouterr().out


def test_16bit_png_quality_training_photos(tmp_path):
    """train-quality's photo folder reads a 16-bit PNG through the shared loader (values / 65535)."""
    from quarf_hf.quality_training.data import PhotoFolder

    grey = _png16(tmp_path / "deep.png")
    item = PhotoFolder(tmp_path)[0]["pixel_values"]
    torch.testing.assert_close(item, grey[None].expand(3, -1, -1), atol=1e-6, rtol=0)

"""Bad inputs to the models (CONTRIQUE, QuARF restoration, QuARF-SegFormer), their configs and the
image-to-image pipeline, each refused in one line naming the argument. The rows are ``(id, entry point,
call(world, out), exception type, text the message must contain)``; bad_input_world.py says what every row
asserts."""

import numpy as np
import pytest
import torch

from bad_input_world import assert_api_refuses
from quarf_hf import (ContriqueConfig, QuarfRestorationConfig, QuarfSegformerConfig, QuarfSegformerForSemanticSegmentation,
                      insert_quarf)
from tiny_models import restoration_config, segformer_config

rand = torch.rand
img64 = rand(1, 3, 64, 64)


def _seg_forward(pixels, labels=None):
    return lambda w, out: w["seg"](pixel_values=pixels, labels=labels)


def _res_forward(pixels, labels=None):
    return lambda w, out: w["res"](pixel_values=pixels, labels=labels)


def _load(key):
    return lambda w, out: QuarfSegformerForSemanticSegmentation.from_pretrained(w[key])


def _contrique(pixels):
    return lambda w, out: w["contrique"](pixel_values=pixels)


def _pipeline(image):
    def call(w, out):
        from quarf_hf.models.pipeline_quarf_restoration import QuarfImageToImagePipeline

        pipe = QuarfImageToImagePipeline(model=w["res"])
        resolved = image(w) if callable(image) else image
        return pipe(resolved)
    return call


API = [
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
    ("segformer 0-255 floats", "QuarfSegformer", _seg_forward(torch.full((1, 3, 32, 32), 200.0)), ValueError, "image processor"),
    ("segformer damaged weights", "QuarfSegformer", _load("damaged_model"), ValueError, "model.safetensors: not a readable safetensors file"),
    ("segformer badly typed config", "QuarfSegformer", _load("typed_model"), ValueError, "config.json: "),
    ("segformer missing folder", "QuarfSegformer", lambda w, out: QuarfSegformerForSemanticSegmentation.from_pretrained(str(out / "model")), FileNotFoundError, "no such folder"),
    ("segformer million experts", "QuarfSegformer", _load("experts_model"), ValueError, "experts_model/config.json: expected a model config of at most 1,000,000 bytes"),
    ("segformer huge widths", "QuarfSegformer", _load("wide_model"), ValueError, "hidden_sizes[0]: expected an integer from 1 to 16384"),
    ("segformer pickled bin", "QuarfSegformer", _load("pickled_model"), ValueError, "pickled_model/pytorch_model.bin: refused"),
    ("segformer size mismatch", "QuarfSegformer", _load("mismatch_model"), ValueError, "mismatch_model/model.safetensors: some tensors' shapes"),
    ("restoration NaN quality", "QuarfRestorationModel", lambda w, out: w["res"](pixel_values=rand(1, 3, 16, 16), quality_features=torch.full((1, 36), float("nan"))), ValueError, "quality_features: expected finite values"),
    # --- an adapter inside someone else's network (insert_quarf)
    ("adapter 0-255 floats", "insert_quarf", lambda w, out: w["cnn"](torch.full((1, 3, 32, 32), 200.0)), ValueError, "look like 0-255"),
    ("adapter NaN pixels", "insert_quarf", lambda w, out: w["cnn"](torch.full((1, 3, 32, 32), float("nan"))), ValueError, "finite pixel values"),
    ("adapter empty map names block", "insert_quarf", lambda w, out: w["shrink"](rand(1, 3, 32, 32)), ValueError, "the QuARF block after '1': x: the QuARF block got an empty 0x0 feature map"),
    ("adapter unknown quality name", "insert_quarf", lambda w, out: insert_quarf(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1)), after="0", quality="niqe"), ValueError, "unknown quality extractor 'niqe'"),
    # --- configs
    ("segformer config stage", "configs", lambda w, out: QuarfSegformerConfig(**segformer_config(), quarf_stage=7), ValueError, "quarf_stage"),
    ("segformer config quality", "configs", lambda w, out: QuarfSegformerConfig(**segformer_config(), quality="./niqe"), ValueError, "quality: no such folder './niqe'"),
    ("restoration config loss", "configs", lambda w, out: QuarfRestorationConfig(**restoration_config(loss="l3")), ValueError, "loss"),
    ("restoration config groups", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=[8, 12], norm_num_groups=8), ValueError, "norm_num_groups"),
    ("restoration config widths", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=[], norm_num_groups=4), ValueError, "block_out_channels"),
    ("restoration config quality_dim", "configs", lambda w, out: QuarfRestorationConfig(**restoration_config(quarf={"quality_dim": 5})), ValueError, "quality_dim"),
    ("segformer config experts", "configs", lambda w, out: QuarfSegformerConfig(**segformer_config(), quarf={"experts": [[3, 1]] * 10**6}), ValueError, "experts: expected at most 64 experts, found 1,000,000"),
    ("segformer config widths", "configs", lambda w, out: QuarfSegformerConfig(**segformer_config(hidden_sizes=[10**7, 16, 16, 16])), ValueError, "hidden_sizes[0]: expected an integer from 1 to 16384"),
    ("segformer config depths", "configs", lambda w, out: QuarfSegformerConfig(**segformer_config(depths=[10**6, 1, 1, 1])), ValueError, "depths[0]: expected an integer from 1 to 256"),
    ("restoration config million widths", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=[16] * 10**6), ValueError, "block_out_channels: expected at most 256 entries"),
    ("restoration config width text", "configs", lambda w, out: QuarfRestorationConfig(block_out_channels=["abc"]), ValueError, "block_out_channels[0]"),
    ("contrique config widths", "configs", lambda w, out: ContriqueConfig(hidden_sizes=[10**6, 8], depths=[1, 1]), ValueError, "hidden_sizes[0]: expected an integer from 1 to 16384"),
    ("contrique config depths", "configs", lambda w, out: ContriqueConfig(hidden_sizes=[8, 16], depths=[1]), ValueError, "depths"),
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
    ("pipeline 169 MP png", "pipeline", _pipeline(lambda w: str(w["huge_png"])), ValueError, "expected at most 50,000,000 pixels"),
    ("pipeline 64 MP array", "pipeline", _pipeline(np.broadcast_to(np.uint8(0), (8000, 8000))), ValueError, "expected at most 50,000,000 pixels"),
]


@pytest.mark.parametrize("case", API, ids=[row[0] for row in API])
def test_api_refuses(bad_input_world, tmp_path, case):
    assert_api_refuses(bad_input_world, tmp_path, case)

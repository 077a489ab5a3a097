"""One shared model, many threads: every output is the sequential output for its own input.

N threads x M calls on one model at once, each thread with its own image (of a different quality,
so that a quality vector or a routing that crossed from one call to another would change the
answer), compared bit for bit with the same call made alone: an adapter-attached diffusers UNet
and transformers SegFormer, QuARF-SegFormer, the restoration model, and both pipelines (the
restoration image-to-image pipeline and transformers' image-segmentation pipeline on a
QuARF-SegFormer). The Space's queue under several gradio clients is covered by
``tests/test_space.py::test_concurrent_clients_get_the_sequential_answers``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from quarf_hf import (
    QuarfRestorationConfig,
    QuarfRestorationModel,
    QuarfSegformerConfig,
    QuarfSegformerForSemanticSegmentation,
    insert_quarf,
)

THREADS, CALLS = 4, 6
TINY_SEGFORMER = dict(hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
                      decoder_hidden_size=16, num_labels=3)
BLOCK = dict(num_groups=2, residual=False)


def images_of_different_quality(size: int = 64) -> list[torch.Tensor]:
    """(1, 3, size, size) in [0, 1]: smooth, the same with strong noise, blocky, and random noise."""
    generator = torch.Generator().manual_seed(5)
    ramp = torch.linspace(0, 1, size)
    smooth = (ramp.view(1, 1, 1, -1) * ramp.view(1, 1, -1, 1)).expand(1, 3, size, size).contiguous()
    noisy = (smooth + 0.3 * torch.randn(1, 3, size, size, generator=generator)).clamp(0, 1)
    blocky = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=generator), size=(size, size), mode="nearest")
    return [smooth, noisy, blocky, torch.rand(1, 3, size, size, generator=generator)]


def sharpen_router(block: torch.nn.Module) -> None:
    """A larger router weight makes the (random, small) dependence of routing on quality show."""
    with torch.no_grad():
        block.router.route_linear.weight.mul_(20)


def run_concurrently(call, inputs) -> list:
    """``call(input)`` for each input, THREADS threads x CALLS calls at once; returns the mismatches with
    the sequential results (thread index, call index), after checking the inputs give distinct answers."""
    with torch.no_grad():
        expected = [call(item) for item in inputs]
    distinct = {tuple(np.asarray(flatten(result)).ravel()[:64].round(6)) for result in expected}
    assert len(distinct) == len(inputs), "the inputs must give different outputs for a mix-up to show"
    barrier = threading.Barrier(THREADS)
    mismatches, errors = [], []

    def worker(index):
        try:
            barrier.wait()
            for repeat in range(CALLS):
                with torch.no_grad():
                    result = call(inputs[index % len(inputs)])
                if not equal(result, expected[index % len(inputs)]):
                    mismatches.append((index, repeat))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return mismatches


def flatten(result):
    if isinstance(result, (list, tuple)):
        return np.concatenate([np.asarray(flatten(item), dtype=np.float64).ravel() for item in result])
    if isinstance(result, torch.Tensor):
        return result.detach().double().numpy()
    if isinstance(result, dict):
        return flatten([result[key] for key in sorted(result)])
    return np.asarray(result, dtype=np.float64)


def equal(a, b) -> bool:
    a, b = flatten(a), flatten(b)
    return a.shape == b.shape and np.array_equal(a, b)


def test_adapter_attached_unet_from_threads():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=32, block_out_channels=(16, 32), norm_num_groups=8, layers_per_block=1,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()
    adapter = insert_quarf(unet, after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5, **BLOCK)
    sharpen_router(adapter.block)

    def call(image):
        with adapter.record_routing() as routing:
            sample = unet(image * 2 - 1, timestep=10).sample
        assert len(routing) == 1
        return [sample, routing[0]["conv_in"], adapter.last_routing_weights["conv_in"]]

    assert run_concurrently(call, images_of_different_quality(32)) == []


def test_adapter_attached_segformer_from_threads():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    segformer = SegformerForSemanticSegmentation(SegformerConfig(**TINY_SEGFORMER)).eval()
    after = "segformer.stages.1.patch_embeddings"
    adapter = insert_quarf(segformer, after=after, channels=16, quality="brisque", **BLOCK)
    sharpen_router(adapter.block)

    def call(image):
        with adapter.record_routing() as routing:
            logits = segformer(pixel_values=image).logits
        return [logits, routing[0][after]]

    assert run_concurrently(call, images_of_different_quality()) == []


def test_quarf_segformer_from_threads():
    torch.manual_seed(0)
    model = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        **TINY_SEGFORMER, quality="brisque", quarf={"num_groups": 4})).eval()
    sharpen_router(model.segformer.quarf)

    def call(image):
        out = model(pixel_values=image)
        return [out.logits, out.routing_weights]

    assert run_concurrently(call, images_of_different_quality()) == []


def tiny_restoration() -> QuarfRestorationModel:
    torch.manual_seed(0)
    model = QuarfRestorationModel(QuarfRestorationConfig(block_out_channels=[8, 16], quality="brisque")).eval()
    with torch.no_grad():  # untrained it is the identity (zero conv_out and block gate): make it do something
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    sharpen_router(model.quarf)
    return model


def test_restoration_model_from_threads():
    model = tiny_restoration()

    def call(image):
        out = model(pixel_values=image)
        return [out.reconstruction, out.routing_weights]

    assert run_concurrently(call, images_of_different_quality(32)) == []


def test_restoration_pipeline_from_threads():
    from quarf_hf.models.pipeline_quarf_restoration import QuarfImageToImagePipeline

    pipe = QuarfImageToImagePipeline(model=tiny_restoration())
    arrays = [(image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image in images_of_different_quality(32)]
    assert run_concurrently(lambda array: np.asarray(pipe(array), dtype=np.float64), arrays) == []


def test_segmentation_pipeline_from_threads():
    from transformers import SegformerImageProcessor, pipeline

    torch.manual_seed(0)
    model = QuarfSegformerForSemanticSegmentation(QuarfSegformerConfig(
        **TINY_SEGFORMER, quality="brisque", quarf={"num_groups": 4})).eval()
    sharpen_router(model.segformer.quarf)
    segmenter = pipeline("image-segmentation", model=model, image_processor=SegformerImageProcessor(size={"height": 64, "width": 64}))
    from PIL import Image

    photos = [Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
              for image in images_of_different_quality()]

    def call(photo):
        return [np.asarray(segment["mask"], dtype=np.float64) for segment in segmenter(photo, subtask="semantic")]

    mismatches = run_concurrently(call, photos)
    assert mismatches == []

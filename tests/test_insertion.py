"""insert_quarf: the plug-and-play form, on a transformers vision model and a diffusers UNet2DModel."""

import pytest
import torch
from diffusers import UNet2DModel
from transformers import ConvNextConfig, ConvNextForImageClassification

from quarf_hf import insert_quarf


def tiny_convnext():
    torch.manual_seed(0)
    config = ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=4)
    return ConvNextForImageClassification(config).eval()


def tiny_unet():
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).eval()


def test_identity_at_insertion_on_a_transformers_model():
    """ConvNeXt logits are unchanged right after inserting the residual block (identity init)."""
    model = tiny_convnext()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    before = model(pixel_values=pixels).logits
    insertion = insert_quarf(
        model, after="convnext.embeddings.patch_embeddings", quality="brisque",
        pixel_mean=[0.485, 0.456, 0.406], pixel_std=[0.229, 0.224, 0.225],
    )
    assert insertion.block.in_channels == 8 and insertion.block.config.quality_dim == 36
    torch.testing.assert_close(model(pixel_values=pixels).logits, before, atol=0, rtol=0)
    assert any(name.startswith("quarf_convnext_embeddings_patch_embeddings.") for name in model.state_dict())


def test_block_sees_quality_of_the_model_input_and_trains():
    """The block's quality features are the extractor's output on the un-normalised input; training changes logits."""
    model = tiny_convnext()
    pixels01 = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    insertion = insert_quarf(model, after="convnext.embeddings.patch_embeddings", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    seen = {}
    hook = insertion.block.register_forward_hook(lambda m, args, out: seen.update(q=args[1]))
    model(pixel_values=(pixels01 - 0.5) / 0.5)
    hook.remove()
    torch.testing.assert_close(seen["q"], insertion.quality_extractor(pixels01), atol=1e-4, rtol=1e-4)

    model.train()
    before = model.eval()(pixel_values=pixels01).logits.detach()
    model.train()
    optimizer = torch.optim.SGD(insertion.block.parameters(), lr=0.5)
    target = torch.tensor([0, 1])
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(pixel_values=pixels01).logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.allclose(model.eval()(pixel_values=pixels01).logits, before)


def test_identity_at_insertion_on_a_diffusers_unet():
    unet = tiny_unet()
    sample = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    before = unet(sample, timestep=10).sample
    insert_quarf(unet, after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    torch.testing.assert_close(unet(sample, timestep=10).sample, before, atol=0, rtol=0)


def test_remove_restores_the_model():
    model = tiny_convnext()
    pixels = torch.randn(1, 3, 64, 64)
    before = model(pixel_values=pixels).logits
    insertion = insert_quarf(model, after="convnext.embeddings.patch_embeddings", residual=False)
    assert not torch.allclose(model(pixel_values=pixels).logits, before)
    insertion.remove(model)
    torch.testing.assert_close(model(pixel_values=pixels).logits, before)
    assert not any(name.startswith("quarf_") for name in model.state_dict())


def test_errors_name_the_argument():
    model = tiny_convnext()
    with pytest.raises(ValueError, match="after: 'convnext.nope' is not a submodule"):
        insert_quarf(model, after="convnext.nope")
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        insert_quarf("not a model", after="x")
    insert_quarf(model, after="convnext.embeddings.patch_embeddings")
    with pytest.raises(ValueError, match="already inserted"):
        insert_quarf(model, after="convnext.embeddings.patch_embeddings")
    with pytest.raises(ValueError, match="channels: could not infer"):
        insert_quarf(tiny_convnext(), after="convnext.encoder")


def test_unet_with_inserted_block_trains():
    """After insertion into a diffusers UNet2DModel, a few steps reduce a denoising loss and change the block."""
    unet = tiny_unet().train()
    insertion = insert_quarf(unet, after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    generator = torch.Generator().manual_seed(4)
    clean = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    noise = torch.randn(clean.shape, generator=generator)
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.mse_loss(unet(clean + 0.5 * noise, timestep=10).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert insertion.block.residual_scale.abs().sum() > 0, "the block's gate moved away from identity"

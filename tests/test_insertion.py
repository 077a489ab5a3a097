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


def test_unload_restores_the_model():
    model = tiny_convnext()
    pixels = torch.randn(1, 3, 64, 64)
    before = model(pixel_values=pixels).logits
    insertion = insert_quarf(model, after="convnext.embeddings.patch_embeddings", residual=False)
    assert not torch.allclose(model(pixel_values=pixels).logits, before)
    assert insertion.unload() is model
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


class TwoConvs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.stem(x)))


def test_extractor_follows_the_model_to_dtype_and_device_but_stays_out_of_its_parameters(tiny_contrique):
    """A CONTRIQUE extractor follows a move of the model to another device (before the fix it stayed
    behind) and stays float32 whatever dtype the model is cast to.

    Compared: the extractor's dtype/device after each move with the block's (which was always
    moved); its parameters against model.parameters() and model.state_dict(); its gradients after
    a backward pass through the model. The device move is to PyTorch's "meta" device, a real
    device change that needs no GPU (this machine has none).
    """
    model = TwoConvs()
    from quarf_hf.models.quality import ContriqueQuality

    adapter = insert_quarf(model, after="stem", quality=ContriqueQuality(tiny_contrique))
    extractor_parameters = list(adapter.quality_extractor.parameters())
    assert extractor_parameters and all(not p.requires_grad for p in extractor_parameters)
    model_parameters = {id(p) for p in model.parameters()}
    assert not any(id(p) in model_parameters for p in extractor_parameters), "the optimizer must not see the extractor"
    assert not any("quality" in name for name in model.state_dict()), "the extractor is not saved with the base model"
    assert any(id(p) in model_parameters for p in adapter.block.parameters())

    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    model.train()
    model(pixels).square().mean().backward()
    assert all(p.grad is None for p in extractor_parameters)
    assert adapter.block.residual_scale.grad is not None
    model.requires_grad_(True)  # "unfreeze everything" does not reach the frozen extractor
    assert all(not p.requires_grad for p in extractor_parameters)

    # dtype casts no longer reach it (a bf16 CONTRIQUE fails on CPU): it stays float32.
    model.eval().to(torch.float64)
    assert {p.dtype for p in adapter.quality_extractor.parameters()} == {torch.float32}
    assert adapter.block.router.route_linear.weight.dtype == torch.float64
    assert model(pixels.double()).dtype == torch.float64  # quality computed in float32, cast for the block
    model.half()
    assert {p.dtype for p in adapter.quality_extractor.parameters()} == {torch.float32}
    assert {b.dtype for b in adapter.quality_extractor.buffers() if b.is_floating_point()} == {torch.float32}
    model.to("meta")
    assert {p.device.type for p in adapter.quality_extractor.parameters()} == {"meta"}
    assert adapter.block.router.route_linear.weight.device.type == "meta"


def test_insert_into_an_nn_sequential():
    """An nn.Sequential does not call the block registered on it as one more layer (before the fix it
    did, and the block ran without quality features).

    Compared: outputs right after insertion with the Sequential's own outputs (identity gate),
    after training with them (they must differ), and after remove() with them again (bit for bit).
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    before = model(pixels)
    keys = list(model.state_dict())
    insertion = insert_quarf(model, after="0", quality="brisque")
    assert len(model) == 3, "the Sequential still has its three layers"
    torch.testing.assert_close(model(pixels), before, atol=0, rtol=0)
    optimizer = torch.optim.Adam([p for p in insertion.parameters() if p.requires_grad], lr=0.05)
    for _ in range(3):
        loss = (model(pixels) - 1).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.allclose(model(pixels), before)
    assert insertion.unload() is model
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(model(pixels), before, atol=0, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_extractor_follows_model_cuda(tiny_contrique):
    """On a GPU machine: model.cuda() takes the CONTRIQUE extractor along, and a forward runs there."""
    from quarf_hf.models.quality import ContriqueQuality

    model = TwoConvs()
    adapter = insert_quarf(model, after="stem", quality=ContriqueQuality(tiny_contrique))
    model.cuda()
    assert {p.device.type for p in adapter.quality_extractor.parameters()} == {"cuda"}
    assert model(torch.rand(2, 3, 64, 64, device="cuda")).device.type == "cuda"


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.stem(x)))


def images_of_different_quality():
    """A smooth image, the same with strong noise, and a blocky one: BRISQUE tells them apart."""
    generator = torch.Generator().manual_seed(5)
    ramp = torch.linspace(0, 1, 48)
    smooth = (ramp.view(1, 1, 1, -1) * ramp.view(1, 1, -1, 1)).expand(1, 3, 48, 48).contiguous()
    noisy = (smooth + 0.3 * torch.randn(1, 3, 48, 48, generator=generator)).clamp(0, 1)
    blocky = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=generator), size=(48, 48), mode="nearest")
    return [smooth, noisy, blocky, torch.rand(1, 3, 48, 48, generator=generator)]


def test_threads_calling_one_model_each_get_their_own_images_quality():
    """Several threads call one adapter-attached network at once, each on its own image, many times: every
    output and routing equals the sequential one for that image, bit for bit (no quality crosses calls)."""
    import threading

    torch.manual_seed(0)
    model = TinyCNN().eval()
    adapter = insert_quarf(model, after="stem", quality="brisque", residual=False, num_groups=2, top_k=2)
    images = images_of_different_quality()
    expected, routing = [], []
    with torch.no_grad():
        for image in images:
            expected.append(model(image))
            routing.append(adapter.last_routing_weights["stem"])
    assert not torch.equal(routing[0], routing[1]), "the images must route differently for the test to mean anything"
    barrier = threading.Barrier(len(images))
    mismatches, errors = [], []

    def worker(index):
        try:
            barrier.wait()
            for _ in range(20):
                with torch.no_grad():
                    out = model(images[index])
                if not torch.equal(out, expected[index]) or not torch.equal(adapter.last_routing_weights["stem"], routing[index]):
                    mismatches.append(index)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and not mismatches, (errors, mismatches)


def test_a_named_module_called_on_its_own_raises_naming_its_block():
    """After a full forward (and after one that failed inside), calling the hooked module directly does
    not reuse an earlier image's quality: it raises, naming the block."""
    model = TinyCNN().eval()
    insert_quarf(model, after="stem", quality="brisque", residual=False)
    image = torch.rand(1, 3, 32, 32)
    model(image)
    with pytest.raises(RuntimeError, match="the block after 'stem' runs only inside a forward of the TinyCNN"):
        model.stem(image)
    with pytest.raises(RuntimeError, match="channels"):  # fails inside the forward, after the quality pre-hook
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(RuntimeError, match="the block after 'stem' runs only inside"):
        model.stem(image)
    assert model(image).shape == (1, 3, 32, 32)

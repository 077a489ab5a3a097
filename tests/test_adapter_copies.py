"""Copies of an adapter-attached network: ``copy.deepcopy``, ``pickle`` and
``torch.save(model)`` give an independent network, as EMA / teacher copies and spawn-based
DataLoader workers need.

The reference for "independent" is the behaviour itself: changing the original's blocks must not
move the copy's output, changing the copy's blocks must move it, and the copy's forward must not
see a forward of the original in progress (its own per-call state).
"""

import copy
import io
import pickle

import pytest
import torch
from diffusers import UNet2DModel

from quarf_hf import insert_quarf


def via_pickle(model):
    return pickle.loads(pickle.dumps(model))


def via_torch_save(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


COPIES = {"deepcopy": copy.deepcopy, "pickle": via_pickle, "torch.save": via_torch_save}


def attached_unet():
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).eval()
    adapter = insert_quarf(unet, after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5)
    with torch.no_grad():  # blocks that matter (at insertion they are the identity)
        for parameter in adapter.blocks.parameters():
            parameter.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    return unet, adapter


@pytest.mark.parametrize("how", sorted(COPIES))
def test_a_copy_runs_its_own_blocks(how):
    """A deepcopy's hooks ran the original's blocks (the original's change moved the copy by 0.27,
    the copy's own change did nothing); pickle and torch.save failed on a local closure."""
    unet, adapter = attached_unet()
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    copied = COPIES[how](unet)
    with torch.no_grad():
        before = copied(pixels, timestep=10).sample
        torch.testing.assert_close(before, unet(pixels, timestep=10).sample, atol=0, rtol=0)
        for parameter in adapter.blocks.parameters():  # the original's blocks
            parameter.add_(0.5)
        assert not torch.equal(unet(pixels, timestep=10).sample, before), "the change must matter for the test to mean anything"
        torch.testing.assert_close(copied(pixels, timestep=10).sample, before, atol=0, rtol=0)
        for parameter in copied.quarf_conv_in.parameters():  # the copy's own blocks
            parameter.add_(0.5)
        assert (copied(pixels, timestep=10).sample - before).abs().max() > 1e-3
    assert copied.quarf_conv_in is not unet.quarf_conv_in
    assert copied.quarf_conv_in_quality.extractor is not adapter.quality_extractor


@pytest.mark.parametrize("how", sorted(COPIES))
def test_a_copy_has_its_own_per_call_state(how):
    """Inside a forward of the original, the copy's hooked module called alone still raises (it does not
    find the original's quality vector), and the copy's own forward works there and after."""
    unet, _ = attached_unet()
    copied = COPIES[how](unet)
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    seen = []

    def call_the_copys_module(_module, args):
        with pytest.raises(RuntimeError, match="the block after 'conv_in' runs only inside a forward of the UNet2DModel"):
            copied.conv_in(args[0])
        seen.append(copied(args[0], timestep=10).sample)

    handle = unet.conv_in.register_forward_pre_hook(call_the_copys_module)
    with torch.no_grad():
        expected = unet(pixels, timestep=10).sample
    handle.remove()
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], expected, atol=0, rtol=0)


def test_a_copy_of_an_unloaded_adapter_attaches_to_another_network():
    """A deepcopy of the adapter (blocks and extractor) attached to a second network with the same weights
    gives the original's outputs."""
    unet, adapter = attached_unet()
    plain = copy.deepcopy(adapter.unload())
    copy.deepcopy(adapter).attach(plain)
    adapter.attach(unet)
    pixels = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(plain(pixels, timestep=10).sample, unet(pixels, timestep=10).sample, atol=0, rtol=0)
    assert plain.quarf_conv_in is not unet.quarf_conv_in

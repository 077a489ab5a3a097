"""Size on disk of a QuARF adapter folder next to the base model it attaches to.

For each base network (random weights at the published architectures' sizes; sizes do not
depend on the values): ``save_pretrained`` of the base, then ``insert_quarf`` and
``adapter.save_pretrained``; prints both folders' sizes (every file: weights, config, code,
model card) and the adapter's size as a fraction of the base's.

    python benchmarks/bench_adapter_size.py [--quick]

``--quick`` leaves out the CONTRIQUE (ResNet-50) adapter, the one slow case to build and save.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def segformer_b0():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    # nvidia/segformer-b0-finetuned-ade-512-512's architecture: 150 ADE20K classes.
    config = SegformerConfig(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 5, 8],
                             decoder_hidden_size=256, num_labels=150)
    return SegformerForSemanticSegmentation(config)


def ddpm_cifar10_unet():
    from diffusers import UNet2DModel

    # google/ddpm-cifar10-32's architecture.
    return UNet2DModel(sample_size=32, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the CONTRIQUE adapter")
    args = parser.parse_args()
    from quarf_hf import insert_quarf

    imagenet = dict(pixel_mean=[0.485, 0.456, 0.406], pixel_std=[0.229, 0.224, 0.225])
    cases = [
        ("SegFormer-B0 (ADE20K head)", segformer_b0,
         dict(after="segformer.stages.0.patch_embeddings", channels=32, quality="brisque", **imagenet)),
        ("DDPM CIFAR-10 UNet2DModel", ddpm_cifar10_unet, dict(after="conv_in", quality="brisque", pixel_mean=0.5, pixel_std=0.5)),
    ]
    if not args.quick:
        cases.append(("SegFormer-B0 (ADE20K head)", segformer_b0,
                      dict(after="segformer.stages.0.patch_embeddings", channels=32, quality="contrique", **imagenet)))
    print("| base model | base folder MB | adapter (extractor, block channels) | adapter folder MB | of which weights MB | adapter / base |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for name, make, arguments in cases:
            torch.manual_seed(0)
            model = make()
            base_folder = Path(root) / "base"
            model.save_pretrained(base_folder)
            adapter = insert_quarf(model, **arguments)
            adapter_folder = Path(root) / "adapter"
            adapter.save_pretrained(adapter_folder)
            base, size = folder_bytes(base_folder), folder_bytes(adapter_folder)
            channels = ", ".join(str(a["in_channels"]) for a in adapter.config.attachments)
            weights = (adapter_folder / "model.safetensors").stat().st_size
            print(f"| {name} | {base / 1e6:.2f} | {adapter.config.quality['type']}, {channels} | {size / 1e6:.3f} "
                  f"| {weights / 1e6:.3f} | {size / base:.2%} |")
            for folder in (base_folder, adapter_folder):
                for path in folder.rglob("*"):
                    path.unlink()
                folder.rmdir()


if __name__ == "__main__":
    main()

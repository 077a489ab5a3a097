"""``quarf-hf demo``: the main job of the README's quick start.

For now it shows the QuARF block at work on images of different quality: a batch of clean and
noisy images goes through a frozen quality measure and the block, and the routing weights per
expert are printed. (The full three-arm training comparison replaces this.)
"""

from __future__ import annotations

import torch

from .quarf import QuARF, receptive_field


def _quality_proxy(images: torch.Tensor) -> torch.Tensor:
    """A tiny stand-in quality vector: local high-frequency energy at four scales."""
    feats = []
    for scale in (1, 2, 4, 8):
        pooled = torch.nn.functional.avg_pool2d(images, scale) if scale > 1 else images
        dx = pooled[..., :, 1:] - pooled[..., :, :-1]
        feats.append(dx.abs().mean(dim=(1, 2, 3)))
    return torch.stack(feats, dim=1).log()


def run_demo(args) -> int:
    torch.manual_seed(args.seed)
    size = 64
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    clean = torch.stack([(xx * 6).sin() * 0.5 + 0.5, yy, (xx * yy * 10).cos() * 0.5 + 0.5])[None].repeat(4, 1, 1, 1)
    noise = torch.tensor([0.0, 0.05, 0.15, 0.3]).view(4, 1, 1, 1)
    images = (clean + noise * torch.randn_like(clean)).clamp(0, 1)
    quality = _quality_proxy(images)

    block = QuARF(in_channels=16, quality_dim=quality.shape[1]).eval()
    with torch.no_grad():
        features = torch.nn.functional.conv2d(images, torch.randn(16, 3, 3, 3) * 0.2, padding=1)
        out, routing = block(features, quality, return_routing=True)
        again = block(features, quality)
    fields = [receptive_field(k, d) for k, d in block.config.experts]
    print(f"QuARF block: {block}")
    print(f"output {tuple(out.shape)}, deterministic in eval: {torch.equal(out, again)}")
    print("mean routing weight per expert (receptive field) of an untrained router, per image:")
    print("noise sigma  " + "  ".join(f"RF{f:>3}" for f in fields))
    for sigma, weights in zip(noise.flatten().tolist(), routing.mean(dim=1)):
        print(f"{sigma:>11.2f}  " + "  ".join(f"{w:5.2f}" for w in weights.tolist()))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="show the QuARF block adapting to image quality")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_demo)

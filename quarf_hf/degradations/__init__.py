"""Synthetic image corruptions in the ImageNet-C / Cityscapes-C tradition, batched in torch.

Used to train and evaluate QuARF models on degraded inputs. Not shipped to the Hub.

    from quarf_hf.degradations import CORRUPTIONS, degrade, RandomDegradation
    noisy = degrade(images, "gaussian_noise", 3, generator=torch.Generator().manual_seed(0))
    aug = RandomDegradation(p=0.5)          # all kinds, severities 1..5
    batch = aug(images, generator=g)
    # ImageNet-C's pixel sizes at 224 px, scaled with min(H, W) (the size rule in registry.py)
    sharp = degrade(images, "motion_blur", 3, generator=g, reference_size=224)
"""

from .augment import RandomDegradation
from .registry import CORRUPTIONS, SEVERITIES, SPATIAL, STOCHASTIC, degrade

__all__ = ["CORRUPTIONS", "SEVERITIES", "SPATIAL", "STOCHASTIC", "RandomDegradation", "degrade", "psnr", "psnr_table"]


def __getattr__(name):
    # the PSNR helpers live with the gallery (which imports PIL); load them on first use
    if name in ("psnr", "psnr_table"):
        from . import gallery

        return getattr(gallery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

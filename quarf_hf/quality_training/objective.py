"""CONTRIQUE's training objective, on batches degraded on the device.

Synthetic part: every (corruption, severity) of the degradation suite is a class (and the pristine
image one more). A batch draws ``B / images_per_class`` distinct classes and degrades that many
images with each, so a class has positives both within an image (its two crops) and across
images (same distortion, other content). Authentic part: undegraded images, each its own class.
Two random crops of each degraded image are encoded at full and at half scale (as CONTRIQUE's
features are), projected, and the supervised contrastive loss (NT-Xent generalised to several
positives, Khosla et al. 2020, as CONTRIQUE uses it) is summed over the two scales.
"""

from __future__ import annotations

import torch
from torch import nn

from ..degradations import degrade
from ..models.checks import InputError


def class_table(corruptions: list[str], severities: list[int], clean_class: bool) -> list[tuple[str, int]]:
    """Class id -> (corruption, severity); ``("clean", 0)`` first when the pristine image is a class."""
    table = [("clean", 0)] if clean_class else []
    return table + [(name, severity) for name in corruptions for severity in severities]


def draw_labels(batch_size: int, num_classes: int, images_per_class: int, authentic: int,
                generator: torch.Generator) -> torch.Tensor:
    """Labels of a batch: synthetic classes in groups of ``images_per_class``, then ``authentic``
    images each with its own label (``num_classes + position``)."""
    synthetic = batch_size - authentic
    classes = torch.randperm(num_classes, generator=generator)[: synthetic // images_per_class]
    labels = classes.repeat_interleave(images_per_class)
    own = num_classes + torch.arange(authentic)
    return torch.cat([labels, own])


def degrade_by_label(images: torch.Tensor, labels: torch.Tensor, table, generator: torch.Generator) -> torch.Tensor:
    """Applies each image's class to it (labels beyond the table: left as they are)."""
    out = images.clone()
    for label in labels.unique().tolist():
        if label >= len(table) or table[label][0] == "clean":
            continue
        name, severity = table[label]
        rows = (labels == label).nonzero().flatten().to(images.device)
        out[rows] = degrade(images[rows], name, severity, generator=generator)
    return out


def two_crops(images: torch.Tensor, crop_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random ``crop_size`` crops of every image: (B, 3, c, c) each."""
    batch, _, height, width = images.shape
    tops = torch.randint(height - crop_size + 1, (2, batch), generator=generator).tolist()
    lefts = torch.randint(width - crop_size + 1, (2, batch), generator=generator).tolist()
    views = [torch.stack([images[i, :, t[i]:t[i] + crop_size, l[i]:l[i] + crop_size] for i in range(batch)])
             for t, l in zip(tops, lefts)]
    return views[0], views[1]


def supervised_contrastive_loss(projections: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over anchors of ``-mean_{p in P(i)} log softmax_{a != i}(z_i . z_a / t)[p]``.

    ``projections`` (N, D) (normalised here), ``labels`` (N,); every anchor needs a positive.
    With one positive per anchor this is SimCLR's NT-Xent.
    """
    z = nn.functional.normalize(projections.float(), dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(1)
    if bool((counts == 0).any()):
        raise InputError("labels: every sample needs at least one positive (another sample with its label)")
    return -(log_prob.masked_fill(~positives, 0).sum(1) / counts).mean()


def contrique_loss(model, view_a: torch.Tensor, view_b: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Both views through the model at full and half scale; the contrastive loss summed over the scales."""
    out = model(pixel_values=torch.cat([view_a, view_b]), return_projections=True)
    both = torch.cat([labels, labels]).to(out.projections.device)
    return sum(supervised_contrastive_loss(out.projections[:, scale], both, temperature) for scale in (0, 1))

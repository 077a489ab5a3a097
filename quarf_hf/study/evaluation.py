"""The study's evaluation: the package's runner image by image (for the bootstrap), and the oracle.

:func:`evaluate_per_image` gives what :func:`quarf_hf.evaluation.evaluate_model` gives (the same
degraded images, the same aggregate metrics) plus ``per_image``: condition -> one score per image
(the task's main metric: PSNR for restoration; the image's own mIoU for segmentation); for segmentation
``per_image_confusion`` (condition -> each image's confusion matrix, so that a resampled set of
images gives the pooled mIoU the interval reads); and ``clusters``: each image's photo (its
source photograph for photo crops, the image itself otherwise), which the report's bootstrap
resamples.

The oracle router (a diagnostic, never a shipped model): the QuARF block fed, instead of the
quality vector, a one-hot of the corruption's family (noise / blur / weather / digital) and its
severity (0 = clean). Training and evaluation kinds are disjoint, so the kind itself cannot be
told to the router on unseen kinds; its family and severity are what a perfect quality model
could say about them. The model is built with a constant quality extractor of
:data:`ORACLE_DIM` features; in training the vector comes from the augmentation's own draw
(:class:`OracleTask`), in evaluation from the condition being evaluated (:class:`OracleQuality`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..training.segmentation import SegmentationTask
from ..training.seeds import seeded_generator
from .config import FAMILIES, ORACLE_DIM, corruption_family


def oracle_vector(kind: str | None, severity: int | None) -> torch.Tensor:
    """The oracle's quality vector of one image: its corruption's family and severity, one-hot."""
    vector = torch.zeros(ORACLE_DIM)
    if kind is None:
        vector[len(FAMILIES)] = 1.0
    else:
        vector[FAMILIES.index(corruption_family(kind))] = 1.0
        vector[len(FAMILIES) + int(severity)] = 1.0
    return vector


class OracleQuality(torch.nn.Module):
    """Stands in for a model's constant extractor in evaluation: the current condition's vector."""

    min_size = 1
    feature_dim = ORACLE_DIM

    def __init__(self):
        super().__init__()
        self.vector = oracle_vector(None, None)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vector.to(pixel_values.device).expand(pixel_values.shape[0], -1)


def _extractor_owner(model):
    return model.segformer if hasattr(model, "segformer") else model


class OracleTask(SegmentationTask):
    """Train's task, with each image's true (family, severity) as the model's quality features."""

    def loss(self, run, batch: dict, position: tuple) -> torch.Tensor:
        pixels, labels = batch["pixel_values"], batch["labels"]
        plan = [None] * len(pixels)
        if self.augmentation is not None:
            # The same generator state as the degradation below: the plan is what it does.
            plan = self.augmentation.plan(len(pixels), seeded_generator(pixels.device, *position, 2), pixels.device)
            pixels = self.augmentation(pixels, generator=seeded_generator(pixels.device, *position, 2))
        features = torch.stack([oracle_vector(*(p or (None, None))) for p in plan]).to(pixels.device)
        with run.accelerator.autocast():
            out = run.model(pixel_values=(pixels - self.mean) / self.std, labels=labels, quality_features=features)
        return out.loss


def conditioning_blocks(model) -> list:
    """The model's outermost quality-conditioned blocks (QuARF's routed block, FiLM, a static
    mixture then FiLM); none in a plain network."""
    from ..models.conditioning import QualityFilm, StaticThenFilm
    from ..models.quarf import QuARF

    names = [n for n, m in model.named_modules() if isinstance(m, (QuARF, QualityFilm, StaticThenFilm))]
    outer = [n for n in names if not any(n.startswith(f"{o}.") for o in names if o != n)]
    return [model.get_submodule(n) for n in outer]


@contextmanager
def watch_blocks(model, contributions: list | None = None, switch_off: bool = False):
    """While active, each conditioned block's forward appends ``|block(x) - x| / |x|`` per image to
    ``contributions`` (for a residual block, ``|gate * branch(x)| / |x|``: 0 at the identity start),
    and with ``switch_off`` the block is skipped (its input passed on): the network without it."""

    def hook(module, args, output):
        x = args[0]
        out, rest = (output[0], output[1:]) if isinstance(output, tuple) else (output, None)
        if contributions is not None:
            change = (out - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1).clamp_min(1e-12)
            contributions.extend(float(v) for v in change)
        if switch_off:
            return x if rest is None else (x, *rest)
        return None

    handles = [block.register_forward_hook(hook) for block in conditioning_blocks(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def evaluate_per_image(model, dataset, *, corruptions, severities, seed: int, oracle: bool = False,
                       reference_size: int | None = None, switch_off_block: bool = False) -> dict:
    """:func:`~quarf_hf.evaluation.evaluate_model`'s result plus ``per_image`` (see the module doc)
    and, for a model with a conditioned block, ``block_contribution``: the mean over the degraded
    images of :func:`watch_blocks`'s ratio. ``switch_off_block``: evaluate without the block."""
    from ..evaluation.runner import evaluate_batch, finish_evaluation, setup_evaluation, store_condition

    run = setup_evaluation(model, dataset, corruptions=corruptions, severities=severities, seed=seed, batch_size=1,
                           reference_size=reference_size)
    if oracle:
        _extractor_owner(model).quality_extractor = OracleQuality()
    results, per_image, per_image_confusion, contributions = {}, {}, {}, []
    model.eval()
    for name, severity in run.conditions:
        watched = contributions if name is not None else None
        with torch.no_grad(), watch_blocks(model, watched, switch_off_block):
            if oracle:
                _extractor_owner(model).quality_extractor.vector = oracle_vector(name, severity)
            total, scores, confusions = run.new_condition(), [], []
            for batch in run.batches():  # one image per batch: its own score, then added to the total
                state = run.new_condition()
                evaluate_batch(run, state, batch, name, severity)
                metrics = state.meter.compute(None)
                scores.append(metrics[run.task.metric])
                if hasattr(state.meter, "confusion"):
                    confusions.append(state.meter.confusion.tolist())
                _add(total, state)
        store_condition(results, total, name, severity, None)
        key = "clean" if name is None else f"{name}/{severity}"
        per_image[key] = scores
        if confusions:
            per_image_confusion[key] = confusions
    out = finish_evaluation(run, results)
    out.update(per_image=per_image, clusters=image_clusters(dataset))
    if contributions:
        out["block_contribution"] = float(sum(contributions) / len(contributions))
    if per_image_confusion:  # with the meter's ignore_index: the pooled mIoU is recomputed exactly
        out.update(per_image_confusion=per_image_confusion, ignore_index=total.meter.ignore_index)
    return out


def image_clusters(dataset) -> list[str]:
    """Each evaluated image's photo: crops of one photograph are one cluster (not independent)."""
    if hasattr(dataset, "placement") and hasattr(dataset, "names"):
        names = dataset.names
        return [names[dataset.placement(i)["photo"]] for i in range(len(dataset))]
    return [f"image{i}" for i in range(len(dataset))]


def _add(total, state) -> None:
    """Sums one image's meters into the condition's (confusion matrix or PSNR/SSIM sums, routing)."""
    meter = total.meter
    if hasattr(meter, "confusion"):
        meter.confusion += state.meter.confusion
    else:
        meter.sums += state.meter.sums
        total.identity.sums += state.identity.sums
    if total.routing_sum is not None:
        total.routing_sum = total.routing_sum + state.routing_sum
    total.count += state.count


__all__ = ["oracle_vector", "OracleQuality", "OracleTask", "evaluate_per_image", "image_clusters",
           "conditioning_blocks", "watch_blocks"]

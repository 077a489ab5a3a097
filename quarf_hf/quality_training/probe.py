"""What quality features carry, measured on held-out images and corruption kinds.

For every probe image, the clean image and each held-out corruption at each severity are
encoded. Images are split in two halves by source image (even / odd; tiles of one photo stay
together), so every figure is measured on image content that the probes were not fitted on:

* kind accuracy: a multinomial logistic regression (L2, fitted by L-BFGS on standardised
  features) predicting the corruption kind of the degraded images;
* severity accuracy: the same probe predicting the severity, 0 (clean) to 5, over all kinds;
* Spearman correlation, per kind, between a one-dimensional readout (ridge regression of the
  severity, fitted on all kinds of the first half) and the severity (0-5) on the second half.

The same probe on BRISQUE's 36 features (the standardised ones QuARF routes on) is the reference.
"""

from __future__ import annotations

import math

import torch

from ..degradations import degrade
from ..models.checks import InputError, check_int, short_repr
from ..models.quality import QUALITY_TYPES
from ..progress import progress_bar
from ..training.seeds import mixed_seed

DEFAULT_PROBE_DATA = {"type": "quarf-shapes", "num_samples": 48, "seed": 1000}


def probe_images(probe: dict, image_size: int, min_size: int = QUALITY_TYPES["contrique"].min_size,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe's images, (N, 3, S, S), and each one's source-image id, (N,) (default: 48 quarf-shapes scenes of seed 1000)."""
    from .data import QualityImages

    check_int("image_size", image_size, min_size,
              expected=f"an integer of at least {min_size} (the model's min_image_size)")
    specs = probe.get("data") or [dict(DEFAULT_PROBE_DATA, size=image_size)]
    dataset = QualityImages(specs, image_size, seed=seed + 7919, argument="probe.data")
    if len(set(dataset.groups)) < 4:
        raise InputError(f"probe.data: expected at least 4 distinct images (two halves of two), found {len(set(dataset.groups))}")
    return torch.stack([dataset[i]["pixel_values"] for i in range(len(dataset))]), torch.tensor(dataset.groups)


@torch.no_grad()
def extract_probe_features(extractors: dict, images: torch.Tensor, groups: torch.Tensor, corruptions: list[str],
                           severities: list[int], seed: int = 0, batch_size: int = 32, progress: bool = True) -> dict:
    """Features of clean and degraded probe images for each extractor, plus their labels.

    Returns ``{"features": {name: (M, D)}, "kind": (M,) (-1: clean), "severity": (M,), "image": (M,)}``,
    ``image`` being the source-image id (``groups``).
    """
    conditions = [("clean", 0)] + [(k, s) for k in corruptions for s in severities]
    features = {name: [] for name in extractors}
    kinds, levels, ids = [], [], []
    count = len(images)
    bar = progress_bar(conditions, desc="probe features", disable=not progress, mininterval=1.0)
    for kind, severity in bar:
        for start in range(0, count, batch_size):
            chunk = images[start:start + batch_size]
            if kind != "clean":
                generator = torch.Generator().manual_seed(mixed_seed(seed, corruptions.index(kind), severity, start))
                chunk = degrade(chunk, kind, severity, generator=generator)
            for name, extractor in extractors.items():
                # each extractor where it lives (a trained encoder may be on the GPU, BRISQUE on the CPU)
                device = next(iter([*extractor.parameters(), *extractor.buffers()]), chunk).device
                features[name].append(extractor(chunk.to(device)).float().cpu())
            kinds.append(torch.full((len(chunk),), -1 if kind == "clean" else corruptions.index(kind)))
            levels.append(torch.full((len(chunk),), severity))
            ids.append(groups[start:start + len(chunk)])
    return {"features": {n: torch.cat(f) for n, f in features.items()}, "kind": torch.cat(kinds),
            "severity": torch.cat(levels), "image": torch.cat(ids)}


def _standardise(train: torch.Tensor, test: torch.Tensor):
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def logistic_probe_accuracy(train_x, train_y, test_x, test_y, l2: float = 1e-3, iterations: int = 200) -> float:
    """Test accuracy of a multinomial logistic regression (L2 ``l2``) fitted on standardised features."""
    train_x, test_x = _standardise(train_x.double(), test_x.double())
    classes = int(max(train_y.max(), test_y.max())) + 1
    weight = torch.zeros(train_x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(train_x @ weight + bias, train_y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(((test_x @ weight + bias).argmax(1) == test_y).double().mean())


def ridge_readout(train_x, train_y, test_x, strength: float = 1e-2) -> torch.Tensor:
    """A one-dimensional readout: ridge regression of ``train_y`` on standardised features, applied to ``test_x``."""
    train_x, test_x = _standardise(train_x.double(), test_x.double())
    centre = train_y.double().mean()
    gram = train_x.T @ train_x
    penalty = strength * len(train_x) * torch.eye(gram.shape[0], dtype=torch.float64)
    weight = torch.linalg.solve(gram + penalty, train_x.T @ (train_y.double() - centre))
    return test_x @ weight + centre


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, ties given their average rank."""
    order = torch.argsort(values, stable=True)
    ranks = torch.empty(len(values), dtype=torch.float64)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=torch.float64)
    for value in values.unique():
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation (Pearson correlation of the tie-averaged ranks)."""
    rx, ry = _ranks(x.double()), _ranks(y.double())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else 0.0


def probe_metrics(features: torch.Tensor, kind: torch.Tensor, severity: torch.Tensor, image: torch.Tensor,
                  corruptions: list[str]) -> dict:
    """Kind and severity probe accuracies and per-kind Spearman of the severity readout (see the module doc)."""
    train, test = image % 2 == 0, image % 2 == 1
    degraded = kind >= 0
    result = {
        "kind_accuracy": logistic_probe_accuracy(features[train & degraded], kind[train & degraded],
                                                 features[test & degraded], kind[test & degraded]),
        "severity_accuracy": logistic_probe_accuracy(features[train], severity[train], features[test], severity[test]),
    }
    readout = ridge_readout(features[train], severity[train], features[test])
    test_kind, test_severity = kind[test], severity[test]
    per_kind = {}
    for index, name in enumerate(corruptions):
        rows = (test_kind == index) | (test_kind == -1)  # the kind's severities and the clean images
        per_kind[name] = spearman(readout[rows], test_severity[rows])
    result["spearman"] = per_kind
    result["mean_spearman"] = sum(per_kind.values()) / len(per_kind)
    return result


def run_probe(model, images, corruptions: list[str], severities=(1, 2, 3, 4, 5), seed: int = 0,
              progress: bool = True, return_features: bool = False) -> dict:
    """The probe on a ContriqueModel and, as the reference, on BRISQUE; a JSON-ready dict.

    ``images``: ``(pixels (N, 3, S, S), source ids (N,))`` as :func:`probe_images` returns, or pixels
    alone (each image its own source).
    """
    from ..models.quality import ContriqueQuality, build_quality_extractor

    if len(corruptions) < 2:
        raise InputError(f"corruptions: the kind probe needs at least 2 corruption kinds, found {short_repr(corruptions)}")
    severities = list(severities)
    images, groups = images if isinstance(images, tuple) else (images, torch.arange(len(images)))
    model = model.eval()
    encoder = ContriqueQuality(model) if not hasattr(model, "min_size") else model
    extractors = {"encoder": encoder, "brisque": build_quality_extractor("brisque")}
    data = extract_probe_features(extractors, images, groups, list(corruptions), severities, seed=seed,
                                  progress=progress)
    results = {
        "setup": {"images": len(images), "image_size": list(images.shape[-2:]), "corruptions": list(corruptions),
                  "severities": severities, "source_images": len(groups.unique()),
                  "samples": len(data["kind"]), "split": "source images of even id: fit; odd: test",
                  "chance": {"kind_accuracy": 1 / len(corruptions), "severity_accuracy": 1 / (len(severities) + 1)}},
    }
    for name, features in data["features"].items():
        results[name] = {"feature_dim": features.shape[1],
                         **probe_metrics(features, data["kind"], data["severity"], data["image"], list(corruptions))}
    if return_features:
        results["_data"] = data
    return results


def probe_table(results: dict) -> str:
    """A Markdown table: one row per figure, columns encoder, BRISQUE and chance."""
    chance = results["setup"]["chance"]
    rows = [("kind accuracy (linear probe)", "kind_accuracy", f"{chance['kind_accuracy']:.3f}"),
            ("severity accuracy (linear probe, 0-5)", "severity_accuracy", f"{chance['severity_accuracy']:.3f}")]
    lines = ["| figure | encoder | BRISQUE | chance |", "|---|---:|---:|---:|"]
    for label, key, level in rows:
        lines.append(f"| {label} | {results['encoder'][key]:.3f} | {results['brisque'][key]:.3f} | {level} |")
    for kind in results["setup"]["corruptions"]:
        lines.append(f"| Spearman, severity readout: {kind} | {results['encoder']['spearman'][kind]:.3f} | "
                     f"{results['brisque']['spearman'][kind]:.3f} | 0 |")
    lines.append(f"| Spearman, mean over kinds | {results['encoder']['mean_spearman']:.3f} | "
                 f"{results['brisque']['mean_spearman']:.3f} | 0 |")
    return "\n".join(lines)


def plot_probe(results: dict, path) -> None:
    """PCA (first two components, fitted on each extractor's features) of the probe features, coloured by kind."""
    from matplotlib.figure import Figure

    from ..atomic import atomic_path

    data = results["_data"]
    corruptions = results["setup"]["corruptions"]
    figure = Figure(figsize=(11, 5), dpi=110)
    axes = figure.subplots(1, 2)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan", "gold"]
    for axis, name, title in zip(axes, ("encoder", "brisque"), ("trained encoder", "BRISQUE (36 features)")):
        features = data["features"][name].double()
        features = (features - features.mean(0)) / features.std(0).clamp_min(1e-6)
        _, _, v = torch.pca_lowrank(features, q=2, center=True)
        points = (features - features.mean(0)) @ v[:, :2]
        clean = data["kind"] == -1
        axis.scatter(points[clean, 0], points[clean, 1], s=8, c="lightgrey", label="clean")
        for index, kind in enumerate(corruptions):
            rows = data["kind"] == index
            sizes = 4 + 5 * data["severity"][rows].double()
            axis.scatter(points[rows, 0], points[rows, 1], s=sizes, c=colours[index % len(colours)], alpha=0.6, label=kind)
        axis.set_title(f"{title}: kind acc. {results[name]['kind_accuracy']:.2f}, "
                       f"mean Spearman {results[name]['mean_spearman']:.2f}", fontsize=9)
        axis.set_xlabel("PC 1")
        axis.set_ylabel("PC 2")
    axes[1].legend(fontsize=7, markerscale=1.5, loc="best")
    figure.suptitle("Held-out corruptions on held-out images (marker size: severity)", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")

"""``quarf-hf demo`` (the default task): all-in-one restoration of real photographs, four arms.

The four arms of ``configs/restoration/`` — **plain** (the UNet alone), **static** (the QuARF block
fed a constant quality vector: one learned mixture of experts for every image), **FiLM** (the
BRISQUE vector as a per-channel scale and shift) and **QuARF** (the BRISQUE vector routes the
block's experts) — share one architecture, data, recipe and seed (so the same initial UNet). Each
is trained on random crops of the five *train* photos of :mod:`quarf_hf.data.photos`, degraded on
the fly by the four training kinds (gaussian_noise, impulse_noise, gaussian_blur, motion_blur),
for the same number of steps.

**Held-out evaluation.** Every arm is evaluated once, by :func:`quarf_hf.evaluation.evaluate_model`
(the evaluator of ``quarf-hf evaluate``; it also scores the degraded input itself, the *identity*
row, the floor a restorer must beat), on a grid of crops of the two *test* photos (chelsea, coffee:
never seen in training nor used for any choice) under :data:`TEST_KINDS`:

- ``speckle_noise``: noise multiplied by the pixel value, unlike the training's additive gaussian
  and impulse noise;
- ``zoom_blur``: a blur whose direction and length vary over the image (radial), unlike the
  training blurs (isotropic gaussian, one straight motion);
- ``jpeg_compression``: block and ringing artefacts, a family the training never shows.

They are the test kinds of the restoration study (``configs/study-restoration.yaml``), neither
training kinds nor the development kinds that the configs' own evaluation uses for choices
(shot_noise, defocus_blur). The
configs' development evaluation is not run here (it would double the demo's time).

Outputs, under ``OUT/restoration/``: each arm's model folder ``<arm>/model`` (loadable with
``AutoModel.from_pretrained``; the Space reads ``quarf/model`` and ``plain/model``), its evaluation
report ``<arm>/evaluation/`` (QuARF's ``routing_vs_severity.png``), ``results.json`` (the table and
QuARF's routing per kind and severity), ``comparison.md`` and ``grid.png`` (per held-out kind one
row: degraded / plain / static / FiLM / QuARF / clean, each tile with its PSNR).

One run is one seed: differences of a few tenths of a dB between arms are within what another seed
moves. :func:`reading` quotes what held over seeds in the restoration study (docs/study.md), read
from the studies' results file (:mod:`quarf_hf.study.results`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import torch

from ..atomic import atomic_path, write_text_atomic
from ..study.results import results_sentence
from .arms import check_demo_folder, configs_dir, train_arms

ARM_NAMES = ("plain", "static", "film", "quarf")  # configs/restoration/<name>.yaml, in training order
ARM_TITLES = {"plain": "plain", "static": "static", "film": "FiLM", "quarf": "QuARF"}
TEST_SPLIT = "test"  # the built-in photos never used for training or choices
TEST_KINDS = ("speckle_noise", "zoom_blur", "jpeg_compression")  # see the module docstring for why these
# The full demo trains the configs as they are; --quick shortens them. minutes: the default cap;
# crop_size: the test photos' evaluation crops, test_crops: None for the grid that covers both photos
# (32 crops of 128 px), else that many crops at fixed random places; grid_crop: the picture's tiles.
BUDGETS = {
    "full": {"minutes": 15.0, "severities": (2, 4), "crop_size": 128, "test_crops": None, "grid_crop": 192},
    "quick": {"minutes": 5.0, "steps": 60, "severities": (3,), "crop_size": 128, "test_crops": 16, "grid_crop": 128},
}
IDENTITY = "identity (degraded input)"
# The arms are tiny (widths 8-32, 64-px crops): a second thread has too little work per op to gain
# anything, and on a busy CPU threads that wait for each other slow every step down (docs/demo.md).
DEFAULT_THREADS = 1
STUDY_PAGE = "docs/study.md"


def restoration_configs_dir() -> Path:
    return configs_dir() / "restoration"


def arm_configs(out_dir: Path, seed: int = 0, steps: int | None = None, severities=BUDGETS["full"]["severities"],
                crop_size: int = BUDGETS["full"]["crop_size"], test_crops: int | None = None) -> dict:
    """One ``TrainConfig`` per arm, read from ``configs/restoration/<arm>.yaml``, written to
    ``out_dir/restoration/<arm>``: the validation data become crops of the test photos (the grid of
    ``crop_size`` crops, or ``test_crops`` crops at places fixed by the seed) and the evaluation
    :data:`TEST_KINDS` at ``severities`` (the demo's one evaluation); no checkpoints, no per-arm
    cap. ``seed`` shifts the run's and the crops' seeds; ``steps`` (when given) shortens every arm
    alike."""
    from ..training import load_train_config

    configs = {}
    for name in ARM_NAMES:
        config = load_train_config(restoration_configs_dir() / f"{name}.yaml")
        data = copy.deepcopy(config.data)
        if seed:  # seed 0 trains the configs' own crops
            data["train"]["seed"] = data["train"].get("seed", 0) + seed
        data["validation"] = {"type": "photos", "split": TEST_SPLIT, "crop_size": crop_size}
        if test_crops is not None:
            data["validation"].update(crops="random", num_samples=test_crops, seed=seed)
        evaluation = {"corruptions": list(TEST_KINDS), "severities": [int(s) for s in severities], "reference_size": None}
        configs[name] = dataclasses.replace(
            config, output_dir=str(out_dir / "restoration" / name), seed=config.seed + seed, data=data,
            evaluation=evaluation, max_steps=steps or config.max_steps, checkpoint_every=0, eval_every=0,
            max_minutes=None)
    return configs


def _scores(entries) -> dict:
    """Mean PSNR and SSIM over metric dicts."""
    entries = list(entries)
    return {metric: sum(entry[metric] for entry in entries) / len(entries) for metric in ("psnr", "ssim")}


def _row(arm: str, title: str, steps, clean, corruptions: dict) -> dict:
    return {"arm": arm, "title": title, "steps": steps, "clean": clean,
            "kinds": {kind: _scores(by_severity.values()) for kind, by_severity in corruptions.items()},
            "mean": _scores(entry for by_severity in corruptions.values() for entry in by_severity.values())}


def comparison_rows(summaries: dict) -> list[dict]:
    """The identity's row (from the first arm's evaluation: every arm sees the same degraded images),
    then one per arm: PSNR and SSIM on clean crops, per held-out kind (mean over severities) and
    their mean over kinds and severities."""
    first = next(iter(summaries.values()))["evaluation"]["identity"]
    rows = [_row("identity", IDENTITY, None, None, first["corruptions"])]
    for name, summary in summaries.items():
        evaluation = summary["evaluation"]
        rows.append(_row(name, ARM_TITLES[name], summary["steps"], _scores([evaluation["clean"]]),
                         evaluation["corruptions"]))
    return rows


def comparison_table(rows: list[dict]) -> str:
    """Markdown: one row per arm (the identity first), cells "PSNR dB / SSIM"."""
    kinds = list(rows[0]["kinds"])
    header = ["arm", "steps", "clean"] + kinds + ["mean (held-out kinds)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(scores):
        return "–" if scores is None else f"{scores['psnr']:.2f} / {scores['ssim']:.3f}"

    for row in rows:
        values = [row["title"], "–" if row["steps"] is None else str(row["steps"]), cell(row["clean"])]
        values += [cell(row["kinds"][kind]) for kind in kinds] + [cell(row["mean"])]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def routing_summary(evaluation: dict) -> dict:
    """QuARF's mean routing weight per expert: ``{"experts": [receptive fields], "clean": [...],
    "corruptions": {kind: {severity: [...]}}}`` (from its evaluation)."""
    return {"experts": evaluation["experts"], "clean": evaluation["clean"]["routing"],
            "corruptions": {kind: {s: entry["routing"] for s, entry in by_severity.items()}
                            for kind, by_severity in evaluation["corruptions"].items()}}


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> its central (3, size, size) window (``size`` at most H and W)."""
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[:, top:top + size, left:left + size]


def restore(model, image: torch.Tensor) -> torch.Tensor:
    """One (3, H, W) image in [0, 1] through a restoration model (its own normalisation), in [0, 1]."""
    from ..evaluation import model_pixel_normalisation

    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in model_pixel_normalisation(model))
    with torch.no_grad():
        output = model(pixel_values=(image[None] - mean) / std)
    return output.reconstruction[0].float().clamp(0, 1)


def picture_grid(models: dict, path: Path, *, kinds=TEST_KINDS, severity: int = 4, crop: int = 192,
                 seed: int = 0) -> Path:
    """A PNG: per held-out kind one row (the test photos in turn, a central ``crop``-px window at
    ``severity``): degraded / each arm's restoration / clean, each tile captioned with its PSNR to
    the clean window. ``models``: ``{arm: model}`` in column order. Degradations are seeded like
    the evaluation's (:func:`~quarf_hf.evaluation.runner.degradation_seed`)."""
    from ..data.photos import load_photo, photo_names
    from ..degradations import degrade
    from ..degradations.gallery import labelled_grid
    from ..evaluation.metrics import psnr_per_image
    from ..evaluation.runner import degradation_seed

    photos = photo_names(TEST_SPLIT)
    rows, labels, captions = [], [], []
    for index, kind in enumerate(kinds):
        photo = photos[index % len(photos)]
        clean = centre_crop(load_photo(photo), crop)
        generator = torch.Generator().manual_seed(degradation_seed(seed, kind, severity, index))
        degraded = degrade(clean[None], kind, severity, generator=generator)[0]
        tiles = [degraded] + [restore(model, degraded) for model in models.values()] + [clean]
        rows.append(tiles)
        labels.append(f"{kind}\nseverity {severity}\n({photo})")
        captions.append([f"{float(psnr_per_image(t[None], clean[None])[0]):.1f} dB" for t in tiles[:-1]] + [None])
    grid = labelled_grid(rows, labels, ["degraded"] + [ARM_TITLES.get(arm, arm) for arm in models] + ["clean"],
                         captions=captions)
    with atomic_path(path) as temporary:
        grid.save(temporary, format="PNG")
    return path


def gains(rows: list[dict]) -> str:
    """Each arm's mean held-out PSNR minus the identity's, and whether any arm moved by half a dB."""
    identity = rows[0]["mean"]["psnr"]
    differences = {row["title"]: row["mean"]["psnr"] - identity for row in rows[1:]}
    text = "Gain over the identity (mean held-out PSNR): " + ", ".join(
        f"{title} {difference:+.2f} dB" for title, difference in differences.items()) + "."
    if all(abs(difference) < 0.5 for difference in differences.values()):
        text += (" No arm moves the held-out images by half a dB: at this budget the arms stay close to the "
                 "identity on kinds they never saw.")
    return text


def reading(steps: int) -> str:
    """What one run of the demo can and cannot show."""
    return (
        "Reading: this is one run (one seed) of tiny UNets trained for "
        f"{steps} steps each, scored on crops of two test photos. Differences of a few tenths of a dB between "
        "arms are within what another seed (another initial UNet, other crops and degradations) moves, so a "
        "difference of that size between two rows here says little; the identity row is the floor (doing "
        f"nothing). {results_sentence('restoration')} Details: {STUDY_PAGE}."
    )


def run_restoration_demo(out_dir: Path, *, seed: int = 0, steps: int | None = None, quick: bool = False,
                         max_minutes: float | None = None, threads: int | None = DEFAULT_THREADS,
                         overwrite: bool = False) -> dict:
    """The restoration demo (arguments already checked); prints as it goes and returns the results
    written to ``out_dir/restoration/results.json``. Raises :class:`~quarf_hf.demo.arms.DemoAborted`
    when the cap is hit. ``threads``: torch's CPU threads during the demo (None: torch's own). An
    ``out_dir`` that holds an earlier demo's ``restoration/`` is refused unless ``overwrite``."""
    check_demo_folder(out_dir, ["restoration"], overwrite)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(out_dir, seed=seed, steps=steps, quick=quick, max_minutes=max_minutes)
    finally:
        torch.set_num_threads(previous)


def _run(out_dir: Path, *, seed: int, steps: int | None, quick: bool, max_minutes: float | None) -> dict:
    from transformers import AutoModel

    import quarf_hf  # noqa: F401 - registers the restoration model with AutoModel

    from ..evaluation import routing_table, write_report

    budget = BUDGETS["quick" if quick else "full"]
    minutes = max_minutes or budget["minutes"]
    severities = budget["severities"]
    configs = arm_configs(out_dir, seed=seed, steps=steps or budget.get("steps"), severities=severities,
                          crop_size=budget["crop_size"], test_crops=budget["test_crops"])
    first = configs[ARM_NAMES[0]]
    steps = first.max_steps
    root = out_dir / "restoration"
    print(f"quarf-hf demo: all-in-one restoration of photographs, four arms "
          f"(configs/restoration/{{{','.join(ARM_NAMES)}}}.yaml), {steps} steps each on crops of the train photos "
          f"(seed {seed}); evaluated on the test photos under held-out kinds {', '.join(TEST_KINDS)} at severities "
          f"{list(severities)}; the demo aborts if it takes more than {minutes:g} minutes; outputs in {root}/")
    started = time.monotonic()
    summaries = train_arms(configs, ARM_TITLES, minutes, started, describe=lambda name, config: (
        f"{ARM_TITLES[name]} (conditioning: {config.model['config']['conditioning']}, quality: "
        f"{config.model['quality'] if isinstance(config.model['quality'], str) else config.model['quality']['type']})"))
    for name, summary in summaries.items():
        write_report(summary["evaluation"], root / name / "evaluation", title=f"restoration demo: {ARM_TITLES[name]}")
    rows = comparison_rows(summaries)
    table = comparison_table(rows)
    quarf_evaluation = summaries["quarf"]["evaluation"]
    routing = routing_summary(quarf_evaluation)
    folders = {name: root / name / "model" for name in ARM_NAMES}
    models = {name: AutoModel.from_pretrained(folder).eval() for name, folder in folders.items()}
    grid_severity = max(severities)
    grid = picture_grid(models, root / "grid.png", severity=grid_severity, crop=budget["grid_crop"],
                        seed=first.seed)
    results = {
        "task": "restoration", "seed": seed, "steps": steps, "test_photos": _test_photos(), "crop_size": budget["crop_size"],
        "num_images": quarf_evaluation["num_images"], "kinds": list(TEST_KINDS), "severities": list(severities),
        "training_kinds": list(first.augmentation["corruptions"]),
        "table": rows, "routing": routing, "grid": str(grid), "grid_severity": grid_severity,
        "models": {name: str(folder) for name, folder in folders.items()},
    }
    write_text_atomic(root / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(root / "comparison.md", table + "\n")
    print(f"\nPSNR (dB) / SSIM on {quarf_evaluation['num_images']} crops of the test photos "
          f"({', '.join(_test_photos())}), clean and under held-out kinds (mean over severities "
          f"{list(severities)}):\n")
    print(table)
    print("\nQuARF's routing: mean weight per expert (receptive field), per kind and severity:\n")
    print(routing_table(quarf_evaluation))
    print(gains(rows))
    print(reading(steps))
    print(f"\npicture: {grid} (per kind: degraded / plain / static / FiLM / QuARF / clean, severity {grid_severity})")
    print(f"routing plot: {root / 'quarf' / 'evaluation' / 'routing_vs_severity.png'}; results: {root / 'results.json'}")
    print("model folders: " + ", ".join(str(folder) for folder in folders.values()))
    print("load one with:\n"
          "    from transformers import AutoModel\n"
          f'    model = AutoModel.from_pretrained("{folders["quarf"]}", trust_remote_code=True)')
    print(f"open QuARF's restoration in the Space (pip install 'quarf-hf[space]'):\n"
          f"    quarf-hf space --restoration {folders['quarf']}")
    print(f"done in {(time.monotonic() - started) / 60:.1f} minutes")
    return results


def _test_photos() -> list[str]:
    from ..data.photos import photo_names

    return photo_names(TEST_SPLIT)

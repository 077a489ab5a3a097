"""``quarf-hf demo --task segmentation``: the paper's comparison on the built-in quarf-shapes benchmark.

Four tiny SegFormers are trained for the same number of steps — the baseline (clean images), data
augmentation (degraded images mixed in), a static mixture of the QuARF experts (the same block and
parameters, but its router sees a constant instead of the image's quality) and QuARF (BRISQUE-routed
block), both with the same augmentation — then evaluated on clean validation scenes and on held-out
degradations (kinds and seeds the augmentation never used). It prints the comparison table, writes
plots and the model folders (``OUT/<arm>/model``, Hub-ready), and shows how to load them.

The arms are the ones in ``configs/`` (baseline / augmentation / static / quarf .yaml). One demo
run is one seed: for what holds over seeds, run ``quarf-hf study configs/study.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

from ..atomic import atomic_path, write_text_atomic
from ..study.results import results_sentence
from .arms import check_demo_folder, configs_dir, train_arms

# The arms, in the order they are trained and shown: configs/<name>.yaml is each one's only definition.
ARM_NAMES = ("baseline", "augmentation", "static", "quarf")
ARM_TITLES = {"baseline": "baseline", "augmentation": "data augmentation",
              "static": "static mixture + data augmentation", "quarf": "QuARF + data augmentation"}
# The full demo trains the configs as they are; --quick shortens them. minutes: the default cap.
BUDGETS = {
    "full": {"minutes": 30.0},
    "quick": {"minutes": 10.0, "steps": 300, "validation_images": 32, "size": 48},
}
RESULTS_PAGE = "docs/study.md"  # what holds over seeds: the study's results


def arm_configs(out_dir: Path, seed: int = 0, steps: int | None = None, validation_images: int | None = None,
                size: int | None = None) -> dict:
    """One ``TrainConfig`` per arm, read from ``configs/<arm>.yaml``: written to ``out_dir/<arm>``, no
    checkpoints and no per-arm time cap; ``seed`` shifts the run's and the scenes' seeds; ``steps``,
    ``validation_images`` and ``size`` (when given) shorten every arm alike."""
    from ..training import load_train_config

    configs = {}
    for name in ARM_NAMES:
        config = load_train_config(configs_dir() / f"{name}.yaml")
        data = copy.deepcopy(config.data)
        for split in ("train", "validation"):
            data[split]["seed"] = data[split].get("seed", 0) + seed
            if size is not None:
                data[split]["size"] = size
        if validation_images is not None:
            data["validation"]["num_samples"] = validation_images
        configs[name] = dataclasses.replace(config, output_dir=str(out_dir / name), seed=config.seed + seed, data=data,
                                            max_steps=steps or config.max_steps, checkpoint_every=0, max_minutes=None)
    return configs


def comparison_rows(summaries: dict) -> list[dict]:
    rows = []
    for name, summary in summaries.items():
        evaluation = summary["evaluation"]
        per_corruption = {c: sum(m["mIoU"] for m in by_severity.values()) / len(by_severity)
                          for c, by_severity in evaluation["corruptions"].items()}
        rows.append({"arm": ARM_TITLES[name], "steps": summary["steps"], "clean": evaluation["clean"]["mIoU"],
                     "degraded": evaluation["mean_corrupted"]["mIoU"], **per_corruption})
    return rows


def comparison_table(rows: list[dict]) -> str:
    corruptions = [k for k in rows[0] if k not in ("arm", "steps", "clean", "degraded")]
    header = ["arm", "steps", "clean mIoU", "degraded mIoU (mean)"] + corruptions
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = [row["arm"], str(row["steps"]), f"{row['clean']:.3f}", f"{row['degraded']:.3f}"]
        values += [f"{row[c]:.3f}" for c in corruptions]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def plot_comparison(summaries: dict, path: Path) -> Path:
    """mIoU vs severity (mean over the held-out kinds), one line per arm; severity 0 is clean."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is

    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for name, summary in summaries.items():
        evaluation = summary["evaluation"]
        severities = sorted({int(s) for by in evaluation["corruptions"].values() for s in by})
        means = [sum(by[str(s)]["mIoU"] for by in evaluation["corruptions"].values()) / len(evaluation["corruptions"])
                 for s in severities]
        axis.plot([0] + severities, [evaluation["clean"]["mIoU"]] + means, marker="o", label=ARM_TITLES[name])
    axis.set_xlabel("severity (0 = clean), mean over held-out corruptions")
    axis.set_ylabel("mIoU")
    axis.set_title("quarf-shapes: clean vs held-out degradations")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    return path


def run_segmentation_demo(out_dir: Path, *, seed: int = 0, steps: int | None = None, quick: bool = False,
                          max_minutes: float | None = None, overwrite: bool = False) -> dict:
    """The segmentation demo (arguments already checked); prints as it goes, returns the summaries.
    Raises :class:`~quarf_hf.demo.arms.DemoAborted` when the cap is hit. An ``out_dir`` that holds
    an earlier demo's outputs is refused unless ``overwrite``."""
    from ..evaluation import write_report

    check_demo_folder(out_dir, [*ARM_NAMES, "comparison.png", "comparison.json", "comparison.md"], overwrite)

    budget = BUDGETS["quick" if quick else "full"]
    minutes = max_minutes or budget["minutes"]
    configs = arm_configs(out_dir, seed=seed, steps=steps or budget.get("steps"),
                          validation_images=budget.get("validation_images"), size=budget.get("size"))
    first = configs[ARM_NAMES[0]]
    steps, size = first.max_steps, first.data["train"]["size"]
    validation_images, held_out = first.data["validation"]["num_samples"], first.evaluation
    print(f"quarf-hf demo --task segmentation: four arms (configs/{{{','.join(ARM_NAMES)}}}.yaml) on quarf-shapes "
          f"({size}x{size}), {steps} steps each (seed {seed}); the demo aborts if it takes more than {minutes:g} "
          f"minutes; outputs in {out_dir}/")
    started = time.monotonic()
    summaries = train_arms(configs, ARM_TITLES, minutes, started, describe=lambda name, config: (
        f"{ARM_TITLES[name]} ({config.model['type']}, augmentation: {config.augmentation['policy']})"))
    for name, summary in summaries.items():
        write_report(summary["evaluation"], out_dir / name / "evaluation", title=ARM_TITLES[name])
    rows = comparison_rows(summaries)
    table = comparison_table(rows)
    plot = plot_comparison(summaries, out_dir / "comparison.png")
    write_text_atomic(out_dir / "comparison.json", json.dumps(rows, indent=2))
    write_text_atomic(out_dir / "comparison.md", table + "\n")
    quarf_folder = out_dir / "quarf" / "model"
    print(f"\nmIoU on {validation_images} validation scenes, clean and under held-out degradations "
          f"({', '.join(held_out['corruptions'])}; severities {held_out['severities']}):\n")
    print(table)
    print("\nReading: this is one run (one seed). The arms' mIoU moves by several hundredths from seed to seed, "
          f"so a difference of that size between two rows here says little. {results_sentence('segmentation')} "
          f"Details: {RESULTS_PAGE}.")
    print(f"\nplots: {plot}, {out_dir}/<arm>/evaluation/*.png (routing per expert: quarf/evaluation/routing_vs_severity.png)")
    print(f"QuARF model folder (Hub-ready): {quarf_folder}")
    print("load it with:\n"
          "    from transformers import AutoModelForSemanticSegmentation, pipeline\n"
          f'    model = AutoModelForSemanticSegmentation.from_pretrained("{quarf_folder}", trust_remote_code=True)\n'
          f'    segmenter = pipeline("image-segmentation", model="{quarf_folder}", trust_remote_code=True)')
    print(f"done in {(time.monotonic() - started) / 60:.1f} minutes")
    baseline_folder = out_dir / "augmentation" / "model"
    print("open these models in the Space (pip install 'quarf-hf[space]'), QuARF next to the augmentation arm:\n"
          f"    quarf-hf space --model {quarf_folder} --baseline {baseline_folder}\n"
          f"    QUARF_MODEL={quarf_folder} BASELINE_MODEL={baseline_folder} python spaces/quarf-demo/app.py")
    return summaries

"""``quarf-hf demo``: the paper's comparison, end to end, on the built-in quarf-shapes benchmark.

Four tiny SegFormers are trained for the same number of steps — the baseline (clean images), data
augmentation (degraded images mixed in), a static mixture of the QuARF experts (the same block and
parameters, but its router sees a constant instead of the image's quality) and QuARF (BRISQUE-routed
block), both with the same augmentation — then evaluated on clean validation scenes and on held-out
degradations (kinds and seeds the augmentation never used). It prints the comparison table, writes
plots and the QuARF model folder (Hub-ready), and shows how to load it.

``--steps`` sets the steps of every arm; ``--max-minutes`` is a wall-clock cap on the whole demo that
aborts it when hit (it never trains one arm less than another). One demo run is one seed: for
what holds over seeds, run ``quarf-hf study configs/study.yaml``.

The arms are the ones in ``configs/`` (baseline / augmentation / static / quarf .yaml).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from ..atomic import atomic_path, write_text_atomic

TINY_SEGFORMER = {"hidden_sizes": [32, 64, 96, 128], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 2, 2, 4],
                  "sr_ratios": [4, 2, 1, 1], "decoder_hidden_size": 64}
AUGMENTATION = {"policy": "degradation", "p": 0.5,
                "corruptions": ["gaussian_noise", "impulse_noise", "gaussian_blur", "motion_blur", "pixelate",
                                "contrast", "low_light", "rain"],
                "severities": [1, 5]}
HELD_OUT = {"corruptions": ["shot_noise", "speckle_noise", "defocus_blur", "jpeg_compression", "fog"],
            "severities": [1, 3, 5]}
BLOCK = {"num_groups": 8, "experts": [[3, 1], [3, 2], [3, 4], [3, 8]], "top_k": 4, "mode": "soft", "residual": True}
ARMS = {
    "baseline": {"model": {"type": "segformer", "config": TINY_SEGFORMER}, "augmentation": {"policy": "none"}},
    "augmentation": {"model": {"type": "segformer", "config": TINY_SEGFORMER}, "augmentation": AUGMENTATION},
    # The capacity-matched control: QuARF's block and parameters, a router fed a constant.
    "static": {"model": {"type": "quarf_segformer", "quality": {"type": "constant", "dim": 36},
                         "config": TINY_SEGFORMER, "quarf": BLOCK},
               "augmentation": AUGMENTATION},
    "quarf": {"model": {"type": "quarf_segformer", "quality": "brisque", "config": TINY_SEGFORMER, "quarf": BLOCK},
              "augmentation": AUGMENTATION},
}
ARM_TITLES = {"baseline": "baseline", "augmentation": "data augmentation",
              "static": "static mixture + data augmentation", "quarf": "QuARF + data augmentation"}
BUDGETS = {  # default wall-clock cap (minutes), steps per arm, validation images, image size
    "full": (30.0, 1500, 128, 64),
    "quick": (10.0, 300, 32, 48),
}
# What the study (five seeds, kinds never used for choices) found; README "Results" has the table.
STUDY_FINDING = ("the study (quarf-hf study configs/study.yaml; README 'Results') found QuARF + augmentation "
                 "ahead of the static mixture and of augmentation alone on unseen kinds on average (+0.03, +0.04 "
                 "mIoU) but in only 3 of 5 seeds, intervals including zero: not shown to help")


class DemoAborted(RuntimeError):
    pass


def arm_configs(out_dir: Path, steps: int, validation_images: int, size: int, seed: int = 0) -> dict:
    """One ``TrainConfig`` per arm; identical except for model and augmentation (no per-arm time cap)."""
    from ..training import TrainConfig

    common = {
        "task": "segmentation",
        "data": {"train": {"type": "quarf-shapes", "num_samples": 4096, "size": size, "seed": seed},
                 "validation": {"type": "quarf-shapes", "num_samples": validation_images, "size": size,
                                "seed": seed + 10_000}},
        "evaluation": HELD_OUT,
        "seed": seed,
        "max_steps": steps,
        "batch_size": 16,
        "learning_rate": 0.002,
        "schedule": "poly",
        "warmup_steps": 10,
    }
    return {name: TrainConfig.from_dict({**copy.deepcopy(common), **copy.deepcopy(arm),
                                         "output_dir": str(out_dir / name)})
            for name, arm in ARMS.items()}


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


def run_demo(args) -> int:
    import dataclasses

    from ..evaluation import write_report
    from ..training import train

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ValueError(f"--max-minutes: expected a positive number, found {args.max_minutes}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: expected a positive integer, found {args.steps}")
    minutes, steps, validation_images, size = BUDGETS["quick" if args.quick else "full"]
    steps = args.steps or steps
    minutes = args.max_minutes or minutes
    out_dir = Path(args.out)
    configs = arm_configs(out_dir, steps, validation_images, size, seed=args.seed)
    print(f"quarf-hf demo: four arms on quarf-shapes ({size}x{size}), {steps} steps each (seed {args.seed}); "
          f"the demo aborts if it takes more than {minutes:g} minutes; outputs in {out_dir}/")
    started = time.monotonic()
    summaries = {}
    for name, config in configs.items():
        print(f"\n== {ARM_TITLES[name]} ({config.model['type']}, augmentation: {config.augmentation['policy']})")
        # What is left of the cap bounds this arm; an arm that reaches it aborts the demo, so
        # that no arm is compared after fewer steps than the others.
        left = minutes - (time.monotonic() - started) / 60
        if left <= 0:
            raise DemoAborted(f"--max-minutes: the cap of {minutes:g} minutes was hit before arm {name!r}")
        summaries[name] = train(dataclasses.replace(config, max_minutes=left))
        if summaries[name]["stopped_early"]:
            raise DemoAborted(f"--max-minutes: the cap of {minutes:g} minutes was hit after {summaries[name]['steps']} "
                              f"of {steps} steps of arm {name!r}; the arms would be unequally trained, so there is no "
                              "comparison. Raise --max-minutes or lower --steps")
        write_report(summaries[name]["evaluation"], out_dir / name / "evaluation", title=ARM_TITLES[name])
    rows = comparison_rows(summaries)
    table = comparison_table(rows)
    plot = plot_comparison(summaries, out_dir / "comparison.png")
    write_text_atomic(out_dir / "comparison.json", json.dumps(rows, indent=2))
    write_text_atomic(out_dir / "comparison.md", table + "\n")
    quarf_folder = out_dir / "quarf" / "model"
    print(f"\nmIoU on {validation_images} validation scenes, clean and under held-out degradations "
          f"({', '.join(HELD_OUT['corruptions'])}; severities {HELD_OUT['severities']}):\n")
    print(table)
    print(f"\nReading: this is one run (one seed). The arms' mIoU moves by several hundredths from seed to seed, "
          f"so a difference of that size between two rows here says little. Over five seeds, {STUDY_FINDING}.")
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
    return 0


def _run_demo(args) -> int:
    try:
        return run_demo(args)
    except DemoAborted as err:
        print(f"quarf-hf demo: stopped: {err}")
        return 3


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="train and compare baseline / augmentation / static mixture / QuARF "
                                                "on built-in data")
    parser.add_argument("--quick", action="store_true", help="a short version (300 steps, smaller images and validation set)")
    parser.add_argument("--steps", type=int, help="training steps of every arm (default 1500, or 300 with --quick)")
    parser.add_argument("--max-minutes", type=float,
                        help="wall-clock cap on the whole demo; hitting it aborts the demo (default 30, or 10 with --quick)")
    parser.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=_run_demo)

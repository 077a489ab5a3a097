"""``quarf-hf demo``: the paper's comparison, end to end, on the built-in quarf-shapes benchmark.

Three tiny SegFormers are trained within a fixed time budget — the baseline (clean images), data
augmentation (degraded images mixed in), and QuARF (BRISQUE-routed block) with the same
augmentation — then evaluated on clean validation scenes and on held-out degradations (kinds and
seeds the augmentation never used). It prints the comparison table, writes plots and the QuARF
model folder (Hub-ready), and shows how to load it.

The arms are the ones in ``configs/`` (baseline / augmentation / quarf .yaml), shrunk to the budget.
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
ARMS = {
    "baseline": {"model": {"type": "segformer", "config": TINY_SEGFORMER}, "augmentation": {"policy": "none"}},
    "augmentation": {"model": {"type": "segformer", "config": TINY_SEGFORMER}, "augmentation": AUGMENTATION},
    "quarf": {"model": {"type": "quarf_segformer", "quality": "brisque", "config": TINY_SEGFORMER,
                        "quarf": {"num_groups": 8, "experts": [[3, 1], [3, 2], [3, 4], [3, 8]], "top_k": 4,
                                  "mode": "soft", "residual": True}},
              "augmentation": AUGMENTATION},
}
ARM_TITLES = {"baseline": "baseline", "augmentation": "data augmentation", "quarf": "QuARF + data augmentation"}
# Every arm trains the same number of steps (a fair comparison); the time budget is a cap that
# stops an arm early on a slower machine (the demo then says so).
BUDGETS = {  # total minutes, steps per arm, validation images, image size
    "full": (10.0, 1500, 128, 64),
    "quick": (2.0, 300, 32, 48),
}


def arm_configs(out_dir: Path, minutes: float, steps: int, validation_images: int, size: int, seed: int = 0) -> dict:
    """One ``TrainConfig`` per arm; identical except for model and augmentation."""
    from ..training import TrainConfig

    # Training gets ~90% of the budget (each arm needs about half its share on a quiet 2-core CPU);
    # evaluation of the three arms and start-up take the rest.
    train_minutes = 0.9 * minutes / len(ARMS)
    common = {
        "task": "segmentation",
        "data": {"train": {"type": "quarf-shapes", "num_samples": 4096, "size": size, "seed": seed},
                 "validation": {"type": "quarf-shapes", "num_samples": validation_images, "size": size,
                                "seed": seed + 10_000}},
        "evaluation": HELD_OUT,
        "seed": seed,
        "max_steps": steps,
        "max_minutes": train_minutes,
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
    from ..evaluation import write_report
    from ..training import train

    if args.minutes is not None and args.minutes <= 0:
        raise ValueError(f"--minutes: expected a positive number, found {args.minutes}")
    minutes, steps, validation_images, size = BUDGETS["quick" if args.quick else "full"]
    if args.minutes:  # a smaller (or larger) budget scales the steps with it
        steps = max(1, round(steps * args.minutes / minutes))
        minutes = args.minutes
    out_dir = Path(args.out)
    configs = arm_configs(out_dir, minutes, steps, validation_images, size, seed=args.seed)
    print(f"quarf-hf demo: three arms on quarf-shapes ({size}x{size}), {steps} steps each, "
          f"at most about {minutes:g} minutes in all, outputs in {out_dir}/")
    started = time.monotonic()
    summaries = {}
    for name, config in configs.items():
        print(f"\n== {ARM_TITLES[name]} ({config.model['type']}, augmentation: {config.augmentation['policy']})")
        summaries[name] = train(config)
        if summaries[name]["stopped_early"]:
            print(f"   note: stopped at its time budget after {summaries[name]['steps']} of {steps} steps "
                  "(a slow or busy machine): the arms are not equally trained")
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


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="train and compare baseline / augmentation / QuARF on built-in data")
    parser.add_argument("--quick", action="store_true", help="a 2-minute version (smaller images and validation set)")
    parser.add_argument("--minutes", type=float, help="total time budget in minutes (default 10, or 2 with --quick)")
    parser.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_demo)

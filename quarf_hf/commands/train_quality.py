"""``quarf-hf train-quality CONFIG`` (also ``accelerate launch -m quarf_hf train-quality CONFIG``)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a quality-training config (YAML), or a hub_configs/ variant such as quarf-quality-small")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    parser.add_argument("--output-dir", help="override the config's output_dir")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run's model/, summary.json and checkpoints in output_dir "
                             "(the config's overwrite: true)")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--max-minutes", type=float, help="override the config's max_minutes (stop gracefully at it)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the final model folder (token from HF_TOKEN)")


def run_train_quality(args) -> int:
    from ..quality_training import load_quality_config, train_quality

    config = load_quality_config(args.config, output_dir=args.output_dir, max_steps=args.max_steps,
                                 max_minutes=args.max_minutes, seed=args.seed,
                                 overwrite=True if getattr(args, "overwrite", False) else None)
    summary = train_quality(config, resume=args.resume, push_to_hub=args.push_to_hub)
    from accelerate import PartialState

    if PartialState().is_main_process:
        losses = summary["losses"]
        print(json.dumps({"steps": summary["steps"], "stopped_early": summary["stopped_early"],
                          "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
                          "model": f"{config.output_dir}/model"}, indent=2))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("train-quality", help="train a quality encoder with CONTRIQUE's contrastive objective")
    add_arguments(parser)
    parser.set_defaults(func=run_train_quality)

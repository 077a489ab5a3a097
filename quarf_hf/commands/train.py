"""``quarf-hf train CONFIG.yaml`` (also ``accelerate launch -m quarf_hf train CONFIG.yaml``)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a training config (YAML); see configs/ for the demo's four arms")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    parser.add_argument("--output-dir", help="override the config's output_dir")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run's model/, summary.json and checkpoints in output_dir "
                             "(the config's overwrite: true)")
    parser.add_argument("--max-steps", type=int, help="override the config's max_steps")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out unreadable items and masks of the wrong size (listed) instead of stopping")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the final model folder (token from HF_TOKEN)")


def run_train(args) -> int:
    from ..training.config import load_train_config
    from ..training import train

    config = load_train_config(args.config, output_dir=args.output_dir, max_steps=args.max_steps, seed=args.seed,
                               overwrite=True if getattr(args, "overwrite", False) else None)
    summary = train(config, resume=args.resume, push_to_hub=args.push_to_hub, skip_bad=getattr(args, "skip_bad", False))
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps({"steps": summary["steps"], "stopped_early": summary["stopped_early"],
                          "model": f"{config.output_dir}/model"}, indent=2))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="fine-tune a (QuARF) model with accelerate (multi-GPU: "
                                                 "accelerate launch -m quarf_hf train CONFIG)")
    add_arguments(parser)
    parser.set_defaults(func=run_train)

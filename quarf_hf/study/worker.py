"""One run of a study: train one network with one seed, then evaluate it on the requested images and kinds.

``python -m quarf_hf.study.worker RUN_DIR`` reads ``RUN_DIR/job.json`` (written by
:mod:`quarf_hf.study.runner`) and writes ``RUN_DIR/result.json`` atomically when it is done, so
a run either has a complete result or none. With ``"train": false`` it only evaluates the model
already saved in ``RUN_DIR/train/model`` (e.g. the test split after every choice). Training is
the package's own loop (:func:`quarf_hf.training.train`; the oracle's task for the oracle run),
evaluation :func:`quarf_hf.study.evaluation.evaluate_per_image`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def run_job(run_dir: Path) -> dict:
    import torch

    from ..atomic import write_text_atomic

    job = json.loads((run_dir / "job.json").read_text())
    torch.set_num_threads(int(job.get("threads", 1)))
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    started = time.monotonic()
    if job["train"]:
        from ..training import TrainConfig
        from ..training.loop import run_training
        from ..training.segmentation import SegmentationTask
        from .evaluation import OracleTask

        # A run that was stopped part-way starts again from scratch: its own outputs are replaced.
        config = TrainConfig.from_dict({**job["train_config"], "overwrite": True})
        summary = run_training((OracleTask if job.get("oracle") else SegmentationTask)(config))
        if summary["steps"] != config.max_steps:
            raise RuntimeError(f"run {run_dir}: trained {summary['steps']} of {config.max_steps} steps")
        result = {"name": job["name"], "seed": job["seed"], "fingerprint": job["fingerprint"], "steps": summary["steps"],
                  "train_seconds": time.monotonic() - started, "splits": {}}
    elif result is None:
        raise FileNotFoundError(f"{result_path}: no trained run to evaluate")
    for split, spec in job["evaluate"].items():
        from ..data import load_dataset_spec
        from .evaluation import evaluate_per_image

        began = time.monotonic()
        evaluation = evaluate_per_image(_load(run_dir), load_dataset_spec(spec["images"]), corruptions=spec["kinds"],
                                        severities=job["severities"], seed=job["seed"], oracle=bool(job.get("oracle")),
                                        reference_size=job.get("reference_size"))
        if job.get("block_off") and "block_contribution" in evaluation:  # the same, without the block
            off = evaluate_per_image(_load(run_dir), load_dataset_spec(spec["images"]), corruptions=spec["kinds"],
                                     severities=job["severities"], seed=job["seed"], oracle=bool(job.get("oracle")),
                                     reference_size=job.get("reference_size"), switch_off_block=True)
            evaluation["block_off"] = {"clean": off["clean"], "mean_corrupted": off["mean_corrupted"]}
        evaluation["seconds"] = time.monotonic() - began
        result["splits"][split] = evaluation
    write_text_atomic(result_path, json.dumps(result))
    return result


def _load(run_dir: Path):
    from ..tasks import task_of

    folder = run_dir / "train" / "model"
    config = json.loads((folder / "config.json").read_text())
    return task_of(config).load(folder).eval()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m quarf_hf.study.worker RUN_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_job(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

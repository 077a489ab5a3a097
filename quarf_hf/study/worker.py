"""One run of a study: train one arm with one seed, then evaluate it on the requested kinds.

``python -m quarf_hf.study.worker RUN_DIR`` reads ``RUN_DIR/job.json`` (written by
:mod:`quarf_hf.study.runner`) and writes ``RUN_DIR/result.json`` atomically when it is done, so
a run either has a complete result or none. With ``"train": false`` it only evaluates the
model already saved in ``RUN_DIR/train/model`` (for kinds added later, e.g. the test kinds).
Training and evaluation are the package's own (``quarf_hf.training.train``,
``quarf_hf.evaluation.evaluate_model``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def run_job(run_dir: Path) -> dict:
    import torch

    from ..atomic import write_text_atomic

    job = json.loads((run_dir / "job.json").read_text())
    threads = int(job.get("threads", 1))
    torch.set_num_threads(threads)
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    started = time.monotonic()
    if job["train"]:
        from ..training import TrainConfig, train

        train_dir = run_dir / "train"
        if train_dir.exists():  # a run that was stopped part-way starts again from scratch
            shutil.rmtree(train_dir)
        config = TrainConfig.from_dict(job["train_config"])
        summary = train(config)
        if summary["steps"] != config.max_steps:
            raise RuntimeError(f"run {run_dir}: trained {summary['steps']} of {config.max_steps} steps")
        result = {"arm": job["arm"], "seed": job["seed"], "fingerprint": job["fingerprint"], "steps": summary["steps"],
                  "train_seconds": time.monotonic() - started, "clean": summary["evaluation"]["clean"], "splits": {}}
    elif result is None:
        raise FileNotFoundError(f"{result_path}: no trained run to evaluate")
    model, dataset = _load(run_dir, job)
    for split, names in job["evaluate"].items():
        from ..evaluation import evaluate_model

        result["splits"][split] = evaluate_model(model, dataset, corruptions=names, severities=job["severities"],
                                                 seed=job["seed"], batch_size=job["batch_size"], progress=False)
    write_text_atomic(result_path, json.dumps(result, indent=1))
    return result


def _load(run_dir: Path, job: dict):
    import quarf_hf  # noqa: F401 - registers the QuARF classes with the Auto classes
    from transformers import AutoModelForSemanticSegmentation, AutoModel

    from ..data import load_dataset_spec

    folder = run_dir / "train" / "model"
    config = json.loads((folder / "config.json").read_text())
    auto = AutoModel if config.get("model_type") == "quarf_restoration" else AutoModelForSemanticSegmentation
    model = auto.from_pretrained(folder).eval()
    return model, load_dataset_spec(job["train_config"]["data"]["validation"])


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

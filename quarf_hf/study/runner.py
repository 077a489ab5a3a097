"""Running a study: one job per (arm, seed), side by side in single-thread processes, resumable.

Layout of the output folder::

    OUT/study.json                 the config the results were made with
    OUT/runs/<arm>/seed<k>/job.json, result.json, log.txt, train/ (the run's model folder)
    OUT/report.md, report.json, *.png   (quarf_hf.study.report)

A run whose ``result.json`` holds every requested split is done and never repeated; one that
lacks a split (``test`` added to ``evaluate`` later) is evaluated from its saved model without
training again; one without a result starts from scratch. Every run trains ``base.max_steps``
steps; the study's ``max_minutes`` is a cap on the whole study: when it is hit the running jobs
are stopped and the study aborts (completed runs are kept for resuming), so arms are never
trained unequally.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import sys
import time
from pathlib import Path

from ..atomic import write_text_atomic
from ..models.checks import InputError
from .config import StudyConfig


class StudyAborted(RuntimeError):
    """The study's time cap was hit (or a run failed); finished runs stay on disk for resuming."""


def run_dir(out_dir: Path, arm: str, seed: int) -> Path:
    return Path(out_dir) / "runs" / arm / f"seed{seed}"


def load_result(out_dir: Path, arm: str, seed: int) -> dict | None:
    path = run_dir(out_dir, arm, seed) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def plan_jobs(config: StudyConfig, out_dir: Path) -> list[dict]:
    """The jobs still to do, seed by seed (so that early seeds are complete first)."""
    jobs = []
    for seed in config.seeds:
        for arm in config.arms:
            folder = run_dir(out_dir, arm, seed)
            fingerprint = config.fingerprint(arm, seed)
            result = load_result(out_dir, arm, seed)
            if result is not None and result.get("fingerprint") != fingerprint:
                raise InputError(f"OUT: {folder} holds a run of a different recipe for arm {arm!r}; use another "
                                 "output folder (results of different recipes are never mixed)")
            missing = [s for s in config.evaluate if result is None or s not in result["splits"]]
            if not missing:
                continue
            train_config = config.train_dict(arm, seed, folder / "train")
            jobs.append({
                "arm": arm, "seed": seed, "fingerprint": fingerprint, "train": result is None,
                "train_config": train_config, "evaluate": {s: config.kinds[s] for s in missing},
                "severities": config.severities, "batch_size": train_config.get("batch_size", 8), "threads": 1,
                "folder": str(folder),
            })
    return jobs


def _stop_on_sigterm():
    """SIGTERM ends the study like the time cap: running workers are stopped, finished runs kept."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise StudyAborted("stopped by SIGTERM; run the same command again to resume")

    return signal.signal(signal.SIGTERM, stop)


def run_study(config: StudyConfig, out_dir, progress: bool = True) -> dict:
    """Runs every missing (arm, seed) job; returns ``{"done": n, "skipped": m}``. Raises
    :class:`StudyAborted` at the time cap or when a run fails (its log is named)."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    saved = out_dir / "study.json"
    if saved.is_file():
        previous = json.loads(saved.read_text())
        if previous.get("base") != config.base or previous.get("kinds") != config.kinds:
            raise InputError(f"OUT: {out_dir} holds a study with another base recipe or kinds; use another output folder")
    jobs = plan_jobs(config, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(saved, json.dumps(config.to_dict(), indent=1))
    total = len(config.arms) * len(config.seeds)
    workers = max(1, min(config.workers, os.cpu_count() or 1, len(jobs) or 1))
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    running: list[tuple[subprocess.Popen, dict, object]] = []
    queue = list(jobs)
    bar = tqdm(total=len(jobs), desc=f"study ({workers} at once)", unit="run", disable=not progress)
    previous_handler = _stop_on_sigterm()
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                folder = Path(job["folder"])
                folder.mkdir(parents=True, exist_ok=True)
                write_text_atomic(folder / "job.json", json.dumps(job, indent=1))
                log = open(folder / "log.txt", "a")
                process = subprocess.Popen([sys.executable, "-m", "quarf_hf.study.worker", str(folder)],
                                           stdout=log, stderr=subprocess.STDOUT, env=env)
                running.append((process, job, log))
            time.sleep(0.2)
            for entry in list(running):
                process, job, log = entry
                if process.poll() is None:
                    continue
                running.remove(entry)
                log.close()
                if process.returncode != 0:
                    raise StudyAborted(f"run {job['arm']} seed {job['seed']} failed (exit {process.returncode}); "
                                       f"see {job['folder']}/log.txt")
                bar.update(1)
                bar.set_postfix_str(f"{job['arm']} seed {job['seed']}")
            if config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes:
                raise StudyAborted(f"max_minutes: the study's cap of {config.max_minutes:g} minutes was hit with "
                                   f"{len(queue) + len(running)} of {len(jobs)} runs left; no arm was cut short: run "
                                   "the same command again to resume")
    finally:
        for process, _, log in running:  # only our own workers, by their handles
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
        bar.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return {"done": len(jobs), "skipped": total - len(jobs)}

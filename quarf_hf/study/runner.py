"""Running a study: the base networks, the diagnostics and the pilot, the regime gate, the power
computation, then the test seeds; each run a job in a single-thread worker process, resumable.

Order (every stage reads only what the stages before it wrote):

1. ``base`` of each pilot seed (clean data for segmentation; for restoration the plain network
   with the degradation mix), evaluated on the development images and kinds;
2. the diagnostics (single-expert networks, the oracle router) and every arm on the pilot seeds,
   development only;
3. the regime gate (:func:`regime_gate`): if it fails the study stops here ("regime invalid");
   then the precondition, where declared (:mod:`quarf_hf.study.diagnostics`): if receptive field
   made no difference between cells, or an oracle router no gain, the study stops here too;
4. the power: the one-sided 80% upper bound of the primary comparison's paired sd over the pilot
   seeds (or a ``declared_sd``) gives the seeds needed, at least ``min_seeds``
   (:func:`quarf_hf.study.power.seeds_needed`), written to ``decisions.json`` once;
5. the test seeds (after the pilot seeds), a few at a time while the time cap allows: their base,
   then every arm, evaluated once on the test images and kinds.

Layout: ``OUT/study.json`` (the config), ``OUT/decisions.json`` (gate, pilot sd, seeds needed),
``OUT/runs/<name>/seed<k>/`` (``job.json``, ``result.json``, ``log.txt``, ``train/model``) and the
report (:mod:`quarf_hf.study.report`). A run whose ``result.json`` holds every requested split is
never repeated, so a stopped study resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..atomic import write_text_atomic
from ..models.checks import InputError, check_path_name
from ..tasks import TaskSpec
from .config import BASE, StudyConfig


class StudyAborted(RuntimeError):
    """The study's time cap was hit (or a run failed); finished runs stay on disk for resuming."""


def run_dir(out_dir: Path, name: str, seed: int) -> Path:
    return Path(out_dir) / "runs" / check_path_name("arms", name) / f"seed{seed}"


def load_result(out_dir: Path, name: str, seed: int) -> dict | None:
    path = run_dir(out_dir, name, seed) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_decisions(out_dir) -> dict:
    path = Path(out_dir) / "decisions.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def make_job(config: StudyConfig, out_dir: Path, name: str, seed: int, splits) -> dict | None:
    """The job of run (name, seed) evaluated on ``splits``; None when its result already has them."""
    fingerprint = config.fingerprint(name, seed)
    result = load_result(out_dir, name, seed)
    folder = run_dir(out_dir, name, seed)
    if result is not None and result.get("fingerprint") != fingerprint:
        raise InputError(f"OUT: {folder} holds a run of a different recipe for {name!r}; use another "
                         "output folder (results of different recipes are never mixed)")
    missing = [s for s in splits if result is None or s not in result["splits"]]
    if result is not None and not missing:
        return None
    return {"name": name, "seed": seed, "fingerprint": fingerprint, "train": result is None,
            "train_config": config.train_dict(name, seed, out_dir), "oracle": config.is_oracle(name),
            "evaluate": {s: {"kinds": config.kinds[s], "images": config.evaluated_images(s)} for s in missing},
            "severities": config.severities, "threads": 1, "folder": str(folder),
            # the arms' block usage: on the pilot's development images, the score without the block too
            "block_off": name in config.arms and "development" in missing,
            # the evaluated degradations follow the training's size rule
            "reference_size": config.base.get("augmentation", {}).get("reference_size")}


def _photo_files(spec) -> dict | None:
    """``{name: path}`` of the photographs a photo-crop spec cuts from; None for other data."""
    from ..data import load_dataset_spec
    from ..data.crops import PhotoCrops

    dataset = load_dataset_spec(spec)
    return {name: path for name, path in dataset.photos} if isinstance(dataset, PhotoCrops) else None


INSETS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)  # crops of each side a near-copy may have lost
NEAR_DUPLICATE = 0.9  # thumbnail correlation above which two photos count as one


def thumbnails(path) -> "np.ndarray":
    """A photo as 32 x 32 grey thumbnails, zero mean and unit norm, one per inset of :data:`INSETS`."""
    import numpy as np
    from PIL import Image

    out = []
    with Image.open(path) as image:
        grey = image.convert("L")
        width, height = grey.size
        for inset in INSETS:
            dx, dy = int(width * inset), int(height * inset)
            pixels = np.asarray(grey.crop((dx, dy, width - dx, height - dy)).resize((32, 32), Image.BOX), dtype=np.float64)
            pixels -= pixels.mean()
            out.append(pixels / max(np.linalg.norm(pixels), 1e-12))
    return np.stack(out)


def photo_similarity(first, second) -> float:
    """How alike two photographs look: the best correlation of one's whole thumbnail with the other's
    at any inset, both ways. A crop, resize or recompression of a photo scores near 1, two views of
    one scene about 0.75, different photographs about 0.5 or less (the built-in photos)."""
    import numpy as np

    a, b = thumbnails(first), thumbnails(second)
    return float(max(np.einsum("ij,kij->k", a[0], b).max(), np.einsum("ij,kij->k", b[0], a).max()))


def image_hashes(spec, task: TaskSpec) -> set[str]:
    """One hash per evaluated image (the clean source the conditions degrade), for data not cut from photos."""
    import numpy as np

    from ..data import load_dataset_spec

    dataset = load_dataset_spec(spec)
    key = task.source_key
    return {hashlib.sha256(np.ascontiguousarray(np.asarray(dataset[i][key], dtype=np.float32)).tobytes()).hexdigest()
            for i in range(len(dataset))}


def check_separate_images(config: StudyConfig) -> None:
    """Development, test and (for photo crops) training images share no photograph, before any run.

    Photo crops are told apart by the photograph they are cut from (its name and file), then by a
    near-duplicate check of the photographs (:func:`photo_similarity`): overlapping crops of one
    photo, or a resized copy of it, would pass a comparison of the crops' pixels. Other data (e.g.
    quarf-shapes scenes) are compared image by image."""
    task = config.task
    specs = {"development": config.images["development"], "test": config.images["test"]}
    photos = {split: _photo_files(spec) for split, spec in specs.items()}
    if any(p is None for p in photos.values()):
        shared = image_hashes(specs["development"], task) & image_hashes(specs["test"], task)
        if shared:
            raise InputError(f"images: development and test share {len(shared)} identical images; give them separate images")
        return
    train = config.base["data"].get("train")
    train_photos = _photo_files(train) if isinstance(train, dict) and train.get("type") in ("photos", "images") else None
    pairs = [("development", photos["development"], "test", photos["test"])]
    if train_photos:
        pairs += [("training", train_photos, split, photos[split]) for split in specs]
    for first, one, second, other in pairs:
        same = sorted(set(one) & set(other)) or sorted(a for a, p in one.items() for q in other.values()
                                                        if Path(p).resolve() == Path(q).resolve())
        if same:
            raise InputError(f"images: {first} and {second} images share the photos {same}; give them separate photos")
        for a, p in one.items():
            for b, q in other.items():
                if photo_similarity(p, q) > NEAR_DUPLICATE:
                    raise InputError(f"images: {first} photo {a!r} and {second} photo {b!r} are near-duplicates "
                                     f"(thumbnail correlation above {NEAR_DUPLICATE}); give them separate photos")


def _stop_on_sigterm():
    """SIGTERM ends the study like the time cap: running workers are stopped, finished runs kept."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        raise StudyAborted("stopped by SIGTERM; run the same command again to resume")

    return signal.signal(signal.SIGTERM, stop)


class _Pool:
    """Runs lists of jobs side by side in worker processes (one thread each)."""

    def __init__(self, config: StudyConfig, progress: bool):
        self.config, self.progress = config, progress
        self.started = time.monotonic()
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.done = 0

    def elapsed_minutes(self) -> float:
        return (time.monotonic() - self.started) / 60

    def run(self, jobs: list, stage: str, hard_cap: bool = True) -> None:
        from ..progress import progress_bar

        jobs = [job for job in jobs if job is not None]
        if not jobs:
            return
        workers = max(1, min(self.config.workers, os.cpu_count() or 1, len(jobs)))
        running: list[tuple[subprocess.Popen, dict, object]] = []
        queue = list(jobs)
        bar = progress_bar(total=len(jobs), desc=f"{stage} ({workers} at once)", unit="run", disable=not self.progress)
        try:
            while queue or running:
                while queue and len(running) < workers:
                    job = queue.pop(0)
                    folder = Path(job["folder"])
                    folder.mkdir(parents=True, exist_ok=True)
                    write_text_atomic(folder / "job.json", json.dumps(job, indent=1))
                    log = open(folder / "log.txt", "a")
                    process = subprocess.Popen([sys.executable, "-m", "quarf_hf.study.worker", str(folder)],
                                               stdout=log, stderr=subprocess.STDOUT, env=self.env)
                    running.append((process, job, log))
                time.sleep(0.2)
                for entry in list(running):
                    process, job, log = entry
                    if process.poll() is None:
                        continue
                    running.remove(entry)
                    log.close()
                    if process.returncode != 0:
                        raise StudyAborted(f"run {job['name']} seed {job['seed']} failed (exit {process.returncode}); "
                                           f"see {job['folder']}/log.txt")
                    self.done += 1
                    bar.update(1)
                    bar.set_postfix_str(f"{job['name']} seed {job['seed']}")
                cap = self.config.max_minutes
                if hard_cap and cap is not None and self.elapsed_minutes() > cap:
                    raise StudyAborted(f"max_minutes: the study's cap of {cap:g} minutes was hit in the {stage} with "
                                       f"{len(queue) + len(running)} of {len(jobs)} runs left; no run was cut short: "
                                       "run the same command again to resume")
        finally:
            for process, _, log in running:  # only our own workers, by their handles
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                log.close()
            bar.close()


def _score(result: dict, split: str, metric: str, degraded: bool = True) -> float:
    evaluation = result["splits"][split]
    return evaluation["mean_corrupted"][metric] if degraded else evaluation["clean"][metric]


def regime_gate(config: StudyConfig, out_dir) -> dict:
    """Whether the pilot runs are in a regime where a comparison means something.

    Segmentation: the augmentation-only arm (``control``) beats the clean base network on the
    degraded development images (means over the pilot seeds). Restoration: the control beats
    the identity (the degraded input itself) by ``min_gain_over_identity`` dB on development.
    """
    task = config.task
    metric = task.metric
    control = [load_result(out_dir, config.control, s) for s in config.pilot]
    control_score = sum(_score(r, "development", metric) for r in control) / len(control)
    if task.identity_row:
        identity = sum(r["splits"]["development"]["identity"]["mean_corrupted"][metric] for r in control) / len(control)
        gain = control_score - identity
        valid = gain >= config.min_gain_over_identity
        numbers = {"control": control_score, "identity": identity, "gain": gain}
        reason = (f"{config.control} scores {control_score:.2f} dB PSNR on the degraded development images, the degraded "
                  f"input itself {identity:.2f} dB: a gain of {gain:+.2f} dB, below the "
                  f"{config.min_gain_over_identity:g} dB the gate asks")
    else:
        bases = [load_result(out_dir, BASE, s) for s in config.pilot]
        base_score = sum(_score(r, "development", metric) for r in bases) / len(bases)
        valid = control_score > base_score
        numbers = {"control": control_score, "clean_base": base_score, "gain": control_score - base_score}
        reason = (f"{config.control} (augmentation) scores {control_score:.3f} {metric} on the degraded development "
                  f"images, not above the clean-trained base's {base_score:.3f}: augmentation does not help yet, so "
                  "no arm's robustness can be read from this recipe")
    return {"valid": bool(valid), "numbers": numbers, "reason": None if valid else f"regime invalid: {reason}"}


def pilot_diagnostics(config: StudyConfig, out_dir) -> dict:
    """The cell diagnostics of the pilot runs on hand (:mod:`quarf_hf.study.diagnostics`): single
    experts per cell, the oracle's gain over the static mixture (``primary``'s second arm), and the
    precondition when the config declares one."""
    from .diagnostics import oracle_gain, precondition, single_experts

    metric = config.task.metric
    runs = {n: [load_result(out_dir, n, s) for s in config.pilot] for n in config.run_names()}
    done = {n: [r["splits"]["development"] for r in rs] for n, rs in runs.items()
            if all(r is not None and "development" in r["splits"] for r in rs)}
    out = {}
    experts = {n: e for n, e in done.items() if n.startswith("expert_d")}
    if len(experts) == len(config.diagnostics.get("dilations", [])) > 0:
        out["single_experts"] = single_experts(experts, metric)
    static = config.primary[1]
    if "oracle" in done and static in done:
        out["oracle_gain"] = oracle_gain(done["oracle"], done[static], metric)
    if config.precondition and "single_experts" in out and "oracle_gain" in out:
        out["precondition"] = precondition(out["single_experts"], out["oracle_gain"], **config.precondition)
    return out


def pilot_sd(config: StudyConfig, out_dir) -> float:
    """The sd of the primary comparison's per-seed differences over the pilot seeds (development)."""
    import numpy as np

    metric = config.task.metric
    first, second = config.primary
    diffs = [_score(load_result(out_dir, first, s), "development", metric)
             - _score(load_result(out_dir, second, s), "development", metric) for s in config.pilot]
    sd = float(np.std(diffs, ddof=1))
    if not sd > 0:
        raise StudyAborted(f"the pilot's paired differences of {first} - {second} have no spread (sd {sd:g}); "
                           "the seeds cannot be sized: make the two arms differ")
    return sd


def proceeds(decisions: dict) -> bool:
    """Whether the test seeds may run: the regime gate passed, and the precondition where declared."""
    return decisions["gate"]["valid"] and decisions.get("precondition", {"passed": True})["passed"]


def plan_seeds(config: StudyConfig, sd: float) -> dict:
    """The test seeds to run, from the pilot's paired sd ``sd``: planned on the declared sd of an
    earlier study, else on the pilot sd's one-sided 80% upper bound; at least ``min_seeds``, at most
    ``max_seeds``; with the effect those seeds detect with 80% power at that sd."""
    from .power import minimum_detectable_effect, sd_upper_bound, seeds_needed

    planning = config.declared_sd if config.declared_sd is not None else sd_upper_bound(sd, len(config.pilot))
    needed = seeds_needed(planning, config.effect, minimum=config.min_seeds)
    planned = min(config.max_seeds, needed)
    return {"pilot_sd": sd, "planning_sd": planning,
            "planning_sd_from": "declared" if config.declared_sd is not None else "pilot upper bound",
            "seeds_needed": needed, "planned": planned, "detectable": minimum_detectable_effect(planned, planning)}


def _run_minutes(config: StudyConfig, out_dir) -> float:
    """Minutes one run takes (train + one evaluation), from the pilot runs."""
    times = []
    for name in [*config.arms]:
        for seed in config.pilot:
            result = load_result(out_dir, name, seed)
            times.append(result["train_seconds"] + sum(e.get("seconds", 0) for e in result["splits"].values()))
    return sum(times) / len(times) / 60


def run_study(config: StudyConfig, out_dir, progress: bool = True) -> dict:
    """Runs every stage (see the module doc); returns the decisions (``decisions.json``). Raises
    :class:`StudyAborted` when the time cap is hit before the test stage or a run fails."""
    from .power import paired_power

    out_dir = Path(out_dir)
    saved = out_dir / "study.json"
    if saved.is_file():
        previous = json.loads(saved.read_text())
        for key, value in config.frozen().items():  # every setting that shapes the test, as first run
            if previous.get(key) != value:
                raise InputError(f"OUT: {out_dir} holds a study with another {key}; use another output folder")
    check_separate_images(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(saved, json.dumps(config.to_dict(), indent=1))
    pool = _Pool(config, progress)
    previous_handler = _stop_on_sigterm()
    try:
        pool.run([make_job(config, out_dir, BASE, s, ["development"]) for s in config.pilot], "base networks (pilot)")
        names = [*config.diagnostic_names(), *config.arms]
        pool.run([make_job(config, out_dir, n, s, ["development"]) for s in config.pilot for n in names],
                 "diagnostics and pilot")
        decisions = load_decisions(out_dir)
        if "gate" not in decisions:  # every choice is made once, on the pilot seeds, and kept
            decisions["gate"] = regime_gate(config, out_dir)
            if decisions["gate"]["valid"] and config.precondition:
                decisions["precondition"] = pilot_diagnostics(config, out_dir)["precondition"]
            if proceeds(decisions):
                decisions.update(plan_seeds(config, pilot_sd(config, out_dir)))
            write_text_atomic(out_dir / "decisions.json", json.dumps(decisions, indent=1))
        if not proceeds(decisions):
            return decisions
        per_run = _run_minutes(config, out_dir)
        seeds = config.test_seeds(decisions["planned"])
        chunk = max(1, config.workers)
        ran, stopped = [], None
        for i in range(0, len(seeds), chunk):
            group = seeds[i:i + chunk]
            runs = len(group) * (len(config.arms) + (config.protocol == "finetune"))
            estimate = per_run * runs / min(chunk, len(group))
            if (config.max_minutes is not None and all(load_result(out_dir, a, s) is None for a in config.arms for s in group)
                    and pool.elapsed_minutes() + estimate > config.max_minutes):
                stopped = (f"max_minutes: {config.max_minutes:g} minutes would be passed by the next seeds "
                           f"(about {estimate:.1f} minutes more)")
                break
            if config.protocol == "finetune":
                pool.run([make_job(config, out_dir, BASE, s, []) for s in group], "base networks (test)", hard_cap=False)
            pool.run([make_job(config, out_dir, a, s, config.test_splits) for s in group for a in config.arms],
                     "test seeds", hard_cap=False)
            ran += group
        decisions.update(test_seeds=ran, stopped=stopped,
                         power_reached=paired_power(len(ran), decisions["planning_sd"], config.effect) if ran else 0.0)
        write_text_atomic(out_dir / "decisions.json", json.dumps(decisions, indent=1))
        return decisions
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

"""What both demos share: the configs folder, the wall-clock cap and the abort rule.

One demo run is one seed; the arms are trained one after another for the same number of steps.
A cap (``--max-minutes``) bounds the whole demo: what is left of it bounds each arm's training, and
an arm that reaches it aborts the demo (:class:`DemoAborted`), because arms trained for unequal
numbers of steps cannot be compared.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path


class DemoAborted(RuntimeError):
    """The demo's time cap was hit: no comparison is made (the CLI exits with status 3)."""


def configs_dir() -> Path:
    """configs/ (installed with the package as quarf_hf/configs, a link to the repository's folder)."""
    return Path(__file__).resolve().parents[1] / "configs"


def check_demo_folder(out_dir: Path, outputs, overwrite: bool) -> None:
    """Refuses ``--out`` when it holds an earlier demo's ``outputs`` (unless ``overwrite``), before any arm trains."""
    from ..outputs import check_output_folder

    check_output_folder(out_dir, outputs, "--out", overwrite=overwrite)


def train_arms(configs: dict, titles: dict, minutes: float, started: float, describe=None) -> dict:
    """Trains every arm of ``configs`` (``{name: TrainConfig}``, in order) with
    :func:`quarf_hf.training.train`; returns ``{name: summary}``.

    ``started`` is the demo's ``time.monotonic()`` start and ``minutes`` its cap: each arm's
    ``max_minutes`` is what is left of the cap, and an arm stopped early by it raises
    :class:`DemoAborted` (the arms would be unequally trained). ``describe(name, config)``: the line
    printed before each arm (default: its title).
    """
    from ..training import train

    summaries = {}
    for name, config in configs.items():
        print(f"\n== {describe(name, config) if describe else titles[name]}")
        left = minutes - (time.monotonic() - started) / 60
        if left <= 0:
            raise DemoAborted(f"--max-minutes: the cap of {minutes:g} minutes was hit before arm {name!r}")
        # The demo checked its folder before the first arm (check_demo_folder): what is there is its own.
        summaries[name] = train(dataclasses.replace(config, max_minutes=left, overwrite=True))
        if summaries[name]["stopped_early"]:
            raise DemoAborted(f"--max-minutes: the cap of {minutes:g} minutes was hit after {summaries[name]['steps']} "
                              f"of {config.max_steps} steps of arm {name!r}; the arms would be unequally trained, so "
                              "there is no comparison. Raise --max-minutes or lower --steps")
    return summaries

"""The study's statistics: power of the paired t-test, seeds needed, t-interval, bootstrap.

Everything a comparison reports is paired by seed: each seed trains every arm from the same base
(and initial draw), so the per-seed difference removes the seed's own luck.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
POWER = 0.8


def paired_power(n: int, sd: float, effect: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs to detect a mean difference ``effect``
    when the per-pair differences have standard deviation ``sd`` (noncentral t, exact)."""
    from scipy import stats

    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = abs(effect) / sd * math.sqrt(n)
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


def seeds_needed(sd: float, effect: float, power: float = POWER, alpha: float = ALPHA, limit: int = 10_000) -> int:
    """The smallest number of seeds (pairs, at least 2) whose paired t-test reaches ``power``."""
    n = 2
    while paired_power(n, sd, effect, alpha) < power:
        n += 1
        if n > limit:
            return limit
    return n


def normal_approximation(sd: float, effect: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """``((z_{1-alpha/2} + z_{power}) * sd / effect) ** 2``: the textbook approximation (a few seeds low)."""
    from scipy import stats

    return ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / effect) ** 2


def t_interval(values, level: float = 0.95) -> list[float]:
    """The Student-t interval of the mean of ``values`` (per-seed differences)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return [float("nan"), float("nan")]
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def bootstrap_interval(per_seed_images, level: float = 0.95, samples: int = 2000, seed: int = 0) -> list[float]:
    """A two-level bootstrap of the mean paired difference: seeds drawn with replacement, then each
    drawn seed's images drawn with replacement. ``per_seed_images``: one list of per-image
    differences per seed (the same images for every seed)."""
    rows = [np.asarray(r, dtype=float) for r in per_seed_images]
    if len(rows) < 2:
        return [float("nan"), float("nan")]
    generator = np.random.default_rng(seed)
    means = np.empty(samples)
    for b in range(samples):
        chosen = generator.integers(len(rows), size=len(rows))
        means[b] = np.mean([rows[i][generator.integers(len(rows[i]), size=len(rows[i]))].mean() for i in chosen])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


__all__ = ["paired_power", "seeds_needed", "normal_approximation", "t_interval", "bootstrap_interval"]

"""The study's statistics: power of the paired t-test, seeds needed, the sd to plan on, the
minimum detectable effect, t-interval, a cluster bootstrap, Holm's adjustment and the sign test.

Everything a comparison reports is paired by seed: each seed trains every arm from the same base
(and initial draw), so the per-seed difference removes the seed's own luck. The evaluated images
are crossed with the seeds (every seed sees the same crops), and crops of one photo are not
independent, so the bootstrap draws photos (clusters), then crops inside them, once per draw,
and applies that one draw to every seed.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA = 0.05
POWER = 0.8
SD_CONFIDENCE = 0.8  # the one-sided level of the pilot sd's upper bound a study plans on


def paired_power(n: int, sd: float, effect: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs to detect a mean difference ``effect``
    when the per-pair differences have standard deviation ``sd``.

    Exact, by integrating the normal mean's tail probabilities over the chi-square distribution of
    the sample variance (the noncentral t written out), which stays finite where scipy's noncentral
    t returns NaN (one degree of freedom and a large noncentrality)."""
    from scipy import integrate, stats

    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = abs(effect) / sd * math.sqrt(n)

    def rejected(variance):  # P(|Z + noncentrality| > critical * s) at s^2 = variance / df
        s = math.sqrt(variance / df)
        return (stats.norm.cdf(noncentrality - critical * s) + stats.norm.cdf(-noncentrality - critical * s)) \
            * stats.chi2.pdf(variance, df)

    edges = [0.0, *stats.chi2.ppf([0.01, 0.5, 0.99], df), np.inf]
    total = sum(integrate.quad(rejected, a, b, limit=200)[0] for a, b in zip(edges[:-1], edges[1:]))
    return float(min(1.0, max(0.0, total)))


def seeds_needed(sd: float, effect: float, power: float = POWER, alpha: float = ALPHA, minimum: int = 2,
                 limit: int = 10_000) -> int:
    """The smallest number of seeds (pairs, at least ``minimum`` and 2) whose paired t-test reaches ``power``."""
    n = max(2, int(minimum))
    while not paired_power(n, sd, effect, alpha) >= power:
        n += 1
        if n > limit:
            return limit
    return n


def sd_upper_bound(sd: float, n: int, confidence: float = SD_CONFIDENCE) -> float:
    """The one-sided ``confidence`` upper bound of a normal sd estimated as ``sd`` from ``n`` values:
    ``sd * sqrt((n - 1) / chi2.ppf(1 - confidence, n - 1))``. Planning on it rather than on the
    estimate keeps a small pilot's luck from promising power the test seeds do not have."""
    from scipy import stats

    if n < 2:
        return float("nan")
    return float(sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - confidence, n - 1)))


def minimum_detectable_effect(n: int, sd: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The smallest mean difference the paired t-test with ``n`` pairs detects with ``power`` at ``sd``."""
    from scipy import optimize

    if n < 2 or not sd > 0:
        return float("nan") if n < 2 else 0.0
    high = sd
    while paired_power(n, sd, high, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda e: paired_power(n, sd, e, alpha) - power, 0.0, high, xtol=1e-10 * sd))


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


def t_test_p(values) -> float:
    """The two-sided p-value of the paired t-test that the mean of ``values`` (per-seed differences) is 0."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan")
    if values.std(ddof=1) == 0:
        return 1.0 if values.mean() == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (family-wise error at most alpha when each adjusted
    p is read against alpha): the k-th smallest is multiplied by (m - k + 1), kept monotone, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted, running = np.empty(len(p)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def sign_test(values) -> dict:
    """Seeds won, lost and tied by the first arm (``values``: per-seed differences) and the two-sided
    exact sign test's p over the untied seeds (1.0 when every seed ties)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    won, lost = int((values > 0).sum()), int((values < 0).sum())
    p = float(stats.binomtest(won, won + lost, 0.5).pvalue) if won + lost else 1.0
    return {"won": won, "lost": lost, "tied": len(values) - won - lost, "p": p}


def cluster_bootstrap_draws(statistic, n_seeds: int, clusters, samples: int = 2000, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of the mean paired difference over seeds, crossed with clustered images.

    Each draw takes seeds with replacement, photos (``clusters``: one label per image) with
    replacement, then each drawn photo's crops with replacement; the one set of images serves every
    drawn seed. ``statistic(indices)`` gives the per-seed differences (an array of ``n_seeds``)
    computed on the images ``indices`` (repeats allowed), the same statistic the t-interval reads
    when ``indices`` are all images once."""
    labels = list(clusters)
    groups = [np.flatnonzero([label == c for label in labels]) for c in dict.fromkeys(labels)]
    generator = np.random.default_rng(seed)
    draws = np.empty(samples)
    for b in range(samples):
        chosen = [groups[g] for g in generator.integers(len(groups), size=len(groups))]
        indices = np.concatenate([g[generator.integers(len(g), size=len(g))] for g in chosen])
        per_seed = np.asarray(statistic(indices), dtype=float)
        draws[b] = per_seed[generator.integers(n_seeds, size=n_seeds)].mean()
    return draws


def cluster_bootstrap_interval(statistic, n_seeds: int, clusters, level: float = 0.95, samples: int = 2000,
                               seed: int = 0) -> list[float]:
    """The percentile interval of :func:`cluster_bootstrap_draws`."""
    if n_seeds < 2:
        return [float("nan"), float("nan")]
    draws = cluster_bootstrap_draws(statistic, n_seeds, clusters, samples, seed)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


__all__ = ["paired_power", "seeds_needed", "sd_upper_bound", "minimum_detectable_effect", "normal_approximation",
           "t_interval", "t_test_p", "holm", "sign_test", "cluster_bootstrap_draws", "cluster_bootstrap_interval"]

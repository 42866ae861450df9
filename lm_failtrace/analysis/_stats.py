"""Confidence intervals used throughout the analysis (each method stated once, here).

Every interval respects the scale of its value: a rate never leaves [0, 1], a difference of two
rates never leaves [-1, 1] (docs/method.md section 8, "Intervals").

- A **mean of per-unit values** (a policy's held-out rescue per unit; a paired per-unit difference
  between two policies; held-out tokens) gets a BCa bootstrap interval over units
  (:func:`mean_ci`; from :data:`ANALYTIC_UNITS` units on, the same BCa interval from the
  bootstrap distribution of the mean in closed form, :func:`_analytic_ends`): bias-corrected
  and accelerated percentiles (Efron 1987) of :data:`N_RESAMPLES` means of units drawn with
  replacement, seeded. Bootstrap means are means of observed values, so the interval lies within
  the range of the data and therefore within the value's scale; BCa corrects the percentile
  interval for the skew that rates near 0 or 1 have. A Student-t interval does neither (its
  ``mean ± t s / sqrt(n)`` gave 0.750 [0.212, 1.288] for a rate). The resampling is exact and
  vectorised: the means of resampled units are drawn either as indices into the units or, when far
  fewer distinct values than units exist (rates are multiples of 1/trials), as multinomial counts
  of the distinct values, whichever is cheaper.
- A **proportion of units** (a regime's share) gets a Wilson score interval
  (:func:`proportion_ci`): it stays in [0, 1] and, unlike the Wald interval, keeps its width at
  0 or n successes.
- Fewer than :data:`MIN_UNITS_FOR_INTERVAL` units: no interval at all (``ci_low``/``ci_high``
  ``None``, ``too_few`` true): with so few units neither the bootstrap nor a normal approximation
  says anything reliable, and a zero-width ``[0.000, 0.000]`` from three equal units would read as
  certainty.
- All units equal (and enough of them): the bootstrap sees no variation and the interval has zero
  width; the interval's ``note`` says so.

Each interval is one mapping with the keys ``mean``, ``ci_low``, ``ci_high``, ``n_units``,
``too_few`` (bool), ``method`` (``"bca_bootstrap"``, ``"bca_analytic"`` or ``"wilson"``) and
``note`` (a sentence or ``None``). The intervals are over units: they do not add the variability
of refitting a policy on other training sets, and are therefore somewhat narrow for fitted
policies (Nadeau & Bengio 2003).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from lm_failtrace.analysis._defaults import LARGE_POPULATION, TOLERANCE

#: Fewer units than this get no interval (``too_few``), only a mean.
MIN_UNITS_FOR_INTERVAL = 10

#: Bootstrap resamples per interval.
N_RESAMPLES = 2000

#: From this many units on, a mean's BCa interval comes from the bootstrap distribution in closed
#: form instead of resamples (:func:`_analytic_ends`): resampling costs 2,000 x n draws, and the
#: closed form is then more accurate than the Monte Carlo of 2,000 resamples.
ANALYTIC_UNITS = LARGE_POPULATION

#: The scale of a rate, and of the difference of two rates.
RATE: tuple[float, float] = (0.0, 1.0)
DIFFERENCE: tuple[float, float] = (-1.0, 1.0)

#: Resampled unit indices drawn per chunk (bounds the memory of one interval to ~32 MiB).
_CHUNK = 1 << 22


def _interval(
    mean: float | None,
    low: float | None,
    high: float | None,
    n: int,
    method: str,
    note: str | None = None,
) -> dict:
    return {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "n_units": n,
        "too_few": n < MIN_UNITS_FOR_INTERVAL,
        "method": method,
        "note": note,
    }


def _too_few_note(n: int) -> str:
    return f"too few units ({n} < {MIN_UNITS_FOR_INTERVAL}) for an interval"


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` resamples of ``values`` with replacement (exact, vectorised)."""
    n = len(values)
    distinct, counts = np.unique(values, return_counts=True)
    if 4 * len(distinct) < n:  # multinomial counts cost ~ distinct values, indices ~ units
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ distinct / n
    rows = max(1, _CHUNK // n)
    return np.concatenate(
        [
            values[rng.integers(0, n, (min(rows, n_resamples - start), n))].mean(axis=1)
            for start in range(0, n_resamples, rows)
        ]
    )


def _acceleration(values: np.ndarray, mean: float) -> float:
    """BCa acceleration from the jackknife, which for a mean is the skewness of the values /
    (6 sqrt(n))."""
    centred = values - mean
    return (centred**3).sum() / (6.0 * (centred**2).sum() ** 1.5)


def _bca_scores(z0: float, accel: float, confidence: float) -> np.ndarray:
    """Normal scores of the BCa levels of the two interval ends (Efron & Tibshirani 1993, ch. 14);
    a non-positive denominator (extreme skew) sends that end to -inf / +inf."""
    z = z0 + special.ndtri(np.array([(1 - confidence) / 2, (1 + confidence) / 2]))
    denominator = 1.0 - accel * z
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, z0 + z / safe, np.sign(z) * np.inf)


def _bca_levels(values: np.ndarray, boot: np.ndarray, mean: float, confidence: float) -> np.ndarray:
    """The BCa percentile levels of the two interval ends.

    Bias correction z0 from the share of bootstrap means below the estimate (ties count half);
    an infinite score sends that end to the extreme resample.
    """
    b = len(boot)
    below = np.mean(boot < mean - TOLERANCE) + 0.5 * np.mean(np.abs(boot - mean) <= TOLERANCE)
    z0 = special.ndtri(np.clip(below, 0.5 / b, 1 - 0.5 / b))
    return special.ndtr(_bca_scores(z0, _acceleration(values, mean), confidence))


def _analytic_ends(values: np.ndarray, mean: float, confidence: float) -> np.ndarray:
    """The BCa ends of a mean from its bootstrap distribution in closed form (many units).

    The bootstrap distribution of the mean of n values has mean ``mean``, standard deviation
    ``tau = sd / sqrt(n)`` (plug-in sd) and skewness ``6 a`` (``a`` the acceleration); its
    one-term Edgeworth expansion gives the share of bootstrap means below the estimate,
    ``1/2 + a phi(0)`` (hence z0), and its Cornish-Fisher quantile at level Phi(w),
    ``mean + tau (w + a (w^2 - 1))``. Both are exact to O(1/n), far inside the Monte Carlo error
    of 2,000 resamples once n >= :data:`ANALYTIC_UNITS`. Like a bootstrap mean, an end never
    leaves the range of the values.
    """
    centred = values - mean
    squares = centred * centred
    m2, m3 = squares.mean(), (squares * centred).mean()
    accel = m3 / (6.0 * np.sqrt(len(values)) * m2**1.5)  # = _acceleration, in moments
    z0 = special.ndtri(0.5 + accel / np.sqrt(2 * np.pi))
    w = _bca_scores(z0, accel, confidence)
    tau = np.sqrt(m2 / len(values))
    finite = np.where(np.isfinite(w), w, 0.0)
    ends = np.where(np.isfinite(w), mean + tau * (finite + accel * (finite**2 - 1)), w)
    return np.clip(ends, values.min(), values.max())


def mean_ci(
    values: np.ndarray,
    confidence: float,
    random_state: int = 0,
    bounds: tuple[float, float] = RATE,
) -> dict:
    """Mean of per-unit values with a BCa bootstrap interval over units (module docstring).

    Args:
        values: one value per unit; non-finite values (operator not assayed) are dropped.
        confidence: level of the interval (0.95).
        random_state: seed of the resampling (the analysis passes ``config.random_state``).
        bounds: the value's scale, :data:`RATE` or :data:`DIFFERENCE`; the interval is kept
            inside it (the bootstrap already is, up to rounding).

    Returns:
        ``{"mean", "ci_low", "ci_high", "n_units", "too_few", "method", "note"}``; ``mean`` is
        ``None`` without units; the interval is ``None`` with fewer than
        :data:`MIN_UNITS_FOR_INTERVAL` units.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return _interval(None, None, None, 0, "bca_bootstrap", _too_few_note(0))
    mean = float(values.mean())
    if n < MIN_UNITS_FOR_INTERVAL:
        return _interval(mean, None, None, n, "bca_bootstrap", _too_few_note(n))
    if values.max() - values.min() <= TOLERANCE:
        note = f"all {n} units have the same value: the interval has zero width"
        return _interval(mean, mean, mean, n, "bca_bootstrap", note)
    if n >= ANALYTIC_UNITS:
        method = "bca_analytic"
        low, high = _analytic_ends(values, mean, confidence)
    else:
        method = "bca_bootstrap"
        boot = bootstrap_means(values, N_RESAMPLES, np.random.default_rng(random_state))
        low, high = np.quantile(boot, _bca_levels(values, boot, mean, confidence))
    # The interval holds its own estimate and stays on the value's scale.
    low = float(np.clip(min(low, mean), *bounds))
    high = float(np.clip(max(high, mean), *bounds))
    return _interval(mean, low, high, n, method)


def proportion_ci(count: int, n: int, confidence: float) -> dict:
    """Share ``count / n`` of units with a Wilson score interval (module docstring)."""
    if n == 0:
        return _interval(None, None, None, 0, "wilson", _too_few_note(0))
    share = count / n
    if n < MIN_UNITS_FOR_INTERVAL:
        return _interval(share, None, None, n, "wilson", _too_few_note(n))
    z = float(special.ndtri((1 + confidence) / 2))
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    low = float(np.clip(min(centre - half, share), 0.0, 1.0))
    high = float(np.clip(max(centre + half, share), 0.0, 1.0))
    return _interval(share, low, high, n, "wilson")


#: Fewest repeats before a repeated cross-validation may stop early (two give a standard error).
MIN_REPEATS = 2

#: Half the last digit printed of a rate or an accuracy (3 decimals).
PRINTED_PRECISION = 0.0005


def settled(repeat_means: np.ndarray, over_units: float) -> bool:
    """Whether more repeats of a repeated cross-validation would not matter for its estimate.

    ``repeat_means``: the estimate of each repeat done; ``over_units``: the estimate's standard
    error over units. True, from :data:`MIN_REPEATS` repeats on, when the standard error across
    repeats is at most the larger of :data:`PRINTED_PRECISION` (no printed digit would move) and
    a quarter of ``over_units`` (adding the repeat noise to the interval over units would widen it
    by at most 3%). Used only on large populations (:data:`LARGE_POPULATION` units).
    """
    r = len(repeat_means)
    if r < MIN_REPEATS:
        return False
    across = float(np.std(repeat_means, ddof=1)) / np.sqrt(r)
    return across <= max(PRINTED_PRECISION, over_units / 4)


def difference_outcome(difference: dict) -> str:
    """How policy A compares with B from the interval of their paired per-unit difference A - B.

    ``better`` when the whole interval lies above 0, ``worse`` when below, ``tie`` when it covers
    0 (not distinguishable), ``too_few`` when there is no interval.
    """
    if difference.get("too_few") or difference.get("ci_low") is None:
        return "too_few"
    if difference["ci_low"] > TOLERANCE:
        return "better"
    if difference["ci_high"] < -TOLERANCE:
        return "worse"
    return "tie"

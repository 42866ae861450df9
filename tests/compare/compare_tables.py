"""Two small profile tables whose regimes, transitions and paired differences are known exactly.

Operators ``retry`` and ``sparse_steer``; regimes by docs/method.md section 4 (delta 0.05,
reach 0.50):
(retry, sparse) = (0.1, 0.6) is steerable, (0.6, 0.6) resample, (0.0, 0.0) beyond_reach.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

S, R, B = (0.1, 0.6), (0.6, 0.6), (0.0, 0.0)

#: problem -> (retry, sparse_steer) of the old checkpoint. p0-p3 stop failing.
OLD_RATES = {
    "p0": S, "p1": S, "p2": R, "p3": B,
    "p4": S, "p5": S, "p6": R, "p7": R, "p8": B, "p9": B, "p10": (0.2, 0.8), "p11": (0.5, 0.5),
}  # fmt: skip

#: ... and of the new one. p4-p11 are paired; p12-p15 start failing.
NEW_RATES = {
    "p4": (0.1, 0.7),  # S -> S: retry +0, sparse +0.1
    "p5": R,  # S -> R: +0.5, +0
    "p6": B,  # R -> B: -0.6, -0.6
    "p7": R,  # R -> R: 0, 0
    "p8": S,  # B -> S: +0.1, +0.6
    "p9": B,  # B -> B: 0, 0
    "p10": B,  # S -> B: -0.2, -0.8
    "p11": S,  # R -> S: -0.4, +0.1
    "p12": S, "p13": R, "p14": R, "p15": B,
}  # fmt: skip


def profile_frame(
    rates: dict[str, tuple[float, float]], model: str, task: str = "arith", seed: int = 0
) -> pd.DataFrame:
    """A profile table of one model and task with the given rescue rates (outcome features)."""
    rng = np.random.default_rng(seed)
    n = len(rates)
    return pd.DataFrame(
        {
            "cell": f"{model}|{task}",
            "model": model,
            "task": task,
            "problem_id": list(rates),
            "answer_entropy": rng.uniform(0, 1, n).round(3),
            "mode_share": rng.uniform(0, 1, n).round(3),
            "retry": [r for r, _ in rates.values()],
            "sparse_steer": [s for _, s in rates.values()],
        }
    )

"""Benchmark: reading a million-unit profile table vs the published protocol vs the full analysis.

Makes N synthetic failure units over several cells (rescue rates are multiples of 1/20 and mean
tokens per trial multiples of 1/4, as in real assays of 20 and 4 trials), writes them as CSV, then
measures three phases, each in a fresh Python process so that ``ru_maxrss`` (peak resident memory)
belongs to that phase alone:

1. ``read``: :func:`lm_failtrace.profiles.read_profiles` (parse + validate).
2. ``published``: the same read, then regime labels and the published protocol of every cell and
   pooled (:func:`lm_failtrace.analysis.published`). Target (issue 2): <= 3 x read.
3. ``analyze``: the same read, then the full ``failtrace analyze`` path
   (:func:`lm_failtrace.analysis.analyze` with the default configuration: regimes, published
   protocol, the honest protocol with every default policy on both populations, the token budget,
   selection, verdicts, recoverability, clustering and model identification; no labels).
   Target (issue 10): <= 30 x read.

Every phase must peak under 2 GiB. ``--no-tokens`` leaves out the ``<operator>_tokens`` columns
(the table of issue 2; the analysis then applies no token budget).

Usage: python benchmarks/bench_analyze.py [--units 1000000] [--cells 8] [--no-tokens] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

OPERATORS = ("retry", "sparse_steer", "sparse_steer_random", "local_temp", "dense_steer")

#: Typical mean tokens per trial of each operator (dense_steer runs two models' worth of steps).
TOKENS = {
    "retry": 300,
    "sparse_steer": 310,
    "sparse_steer_random": 305,
    "local_temp": 320,
    "dense_steer": 450,
}

#: (phase, target ratio to the read) of the timed phases after the read.
TARGETS = (("published", 3.0), ("analyze", 30.0))

#: Peak resident memory every phase must stay under.
PEAK_MIB = 2048

_PHASE = r"""
import json, resource, sys, time
from lm_failtrace.profiles import read_profiles
start = time.perf_counter()
table = read_profiles(sys.argv[2])
if sys.argv[1] == "published":
    from lm_failtrace.analysis import published
    doc = published(table)
    assert doc["pooled"]["n_units"] == len(table)
elif sys.argv[1] == "analyze":
    from lm_failtrace.analysis import analyze
    doc = analyze(table)
    assert doc["pooled"]["n_units"] == len(table) and "selected" in doc["pooled"]["selection"]
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({"seconds": elapsed, "peak_mib": peak}))
"""


def make_table(n_units: int, n_cells: int, seed: int = 0, tokens: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cell_id = rng.integers(0, n_cells, n_units)
    models = np.array([f"model{c % 4}" for c in range(n_cells)])
    tasks = np.array([f"task{c // 4}" for c in range(n_cells)])
    frame = pd.DataFrame(
        {
            "cell": np.char.add(np.char.add(models[cell_id], "|"), tasks[cell_id]),
            "model": models[cell_id],
            "task": tasks[cell_id],
            "problem_id": np.char.add("p", np.arange(n_units).astype(str)),
            "n_failed_rollouts": rng.integers(1, 51, n_units),
            "spread": rng.uniform(0.05, 0.85, n_units).round(6),
            "concentration": rng.normal(2.3, 0.3, n_units).round(6),
            "logit_dispersion": rng.normal(-0.8, 0.15, n_units).round(6),
        }
    )
    for op in OPERATORS:
        frame[op] = rng.integers(0, 21, n_units) / 20
    if tokens:
        for op in OPERATORS:
            frame[f"{op}_tokens"] = rng.integers(2 * TOKENS[op], 6 * TOKENS[op], n_units) / 4
    return frame


def run_phase(phase: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PHASE, phase, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--no-tokens", action="store_true", help="no <operator>_tokens columns")
    parser.add_argument("--keep", type=Path, help="write the table here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "profiles.csv"
        print(f"writing {args.units:,} units in {args.cells} cells to {path}", file=sys.stderr)
        make_table(args.units, args.cells, tokens=not args.no_tokens).to_csv(path, index=False)
        results = {}
        for phase in ("read", *(name for name, _ in TARGETS)):
            print(f"timing {phase}", file=sys.stderr)
            results[phase] = run_phase(phase, path)
    tokens = "without" if args.no_tokens else "with"
    print(f"units        {args.units:,} ({args.cells} cells, {tokens} <operator>_tokens columns)")
    read = results["read"]
    print(f"read         {read['seconds']:8.2f} s   peak {read['peak_mib']:6.0f} MiB")
    failed = read["peak_mib"] >= PEAK_MIB
    for phase, target in TARGETS:
        row = results[phase]
        ratio = row["seconds"] / read["seconds"]
        print(
            f"{phase:<12} {row['seconds']:8.2f} s   peak {row['peak_mib']:6.0f} MiB   "
            f"ratio to read {ratio:6.2f} (target <= {target:g})"
        )
        failed = failed or ratio > target or row["peak_mib"] >= PEAK_MIB
    peak = max(row["peak_mib"] for row in results.values())
    print(f"peak memory  {peak:.0f} MiB (target < {PEAK_MIB})")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

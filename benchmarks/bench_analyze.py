"""Benchmark: reading a million-unit profile table vs reading + regimes + published protocol.

Makes N synthetic failure units over several cells (rescue rates are multiples of 1/20, as in real
assays), writes them as CSV, then measures two phases, each in a fresh Python process so that
``ru_maxrss`` (peak resident memory) belongs to that phase alone:

1. ``read``: :func:`lm_failtrace.profiles.read_profiles` (parse + validate).
2. ``full``: the same read, then regime labels and the published protocol of every cell and pooled
   (:func:`lm_failtrace.analysis.published`).

Targets (issue 2): full <= 3 x read, peak memory < 2 GiB.

Usage: python benchmarks/bench_analyze.py [--units 1000000] [--cells 8] [--keep DIR]
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

_PHASE = r"""
import json, resource, sys, time
from lm_failtrace.profiles import read_profiles
start = time.perf_counter()
table = read_profiles(sys.argv[2])
if sys.argv[1] == "full":
    from lm_failtrace.analysis import published
    doc = published(table)
    assert doc["pooled"]["n_units"] == len(table)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({"seconds": elapsed, "peak_mib": peak}))
"""


def make_table(n_units: int, n_cells: int, seed: int = 0) -> pd.DataFrame:
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
    parser.add_argument("--keep", type=Path, help="write the table here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "profiles.csv"
        print(f"writing {args.units:,} units in {args.cells} cells to {path}", file=sys.stderr)
        make_table(args.units, args.cells).to_csv(path, index=False)
        read = run_phase("read", path)
        full = run_phase("full", path)
    ratio = full["seconds"] / read["seconds"]
    peak = max(read["peak_mib"], full["peak_mib"])
    print(f"units                          {args.units:,} ({args.cells} cells)")
    print(
        f"read only                      {read['seconds']:.2f} s (peak {read['peak_mib']:.0f} MiB)"
    )
    print(
        f"read + regimes + published     {full['seconds']:.2f} s (peak {full['peak_mib']:.0f} MiB)"
    )
    print(f"ratio                          {ratio:.2f} (target <= 3)")
    print(f"peak memory                    {peak:.0f} MiB (target < 2048)")
    if ratio > 3 or peak >= 2048:
        sys.exit(1)


if __name__ == "__main__":
    main()

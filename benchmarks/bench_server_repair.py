"""``failtrace repair`` through two completions servers vs in-process HF, on the demo's problems.

The demo pair's problems (``failtrace demo``'s default 48: 12 per planted mechanism) are recorded
twice with the same seed: by ``failtrace-hf`` with the ancestor, and by
``failtrace-local-completions`` against two vLLM TEST DOUBLES (``tests/_vllm_double.py``: real
HTTP processes serving the same models; vLLM itself needs a GPU). Each run is repaired by its own
backend with all seven operators and the demo's trials and attempts. Printed, measured in one run:

- per operator: trials rescued on the failure units both runs share, for each path, and Fisher's
  exact test of the two proportions; Holm's correction over the seven operators (agreement
  within binomial noise = no Holm-adjusted p below 0.05);
- wall time of each repair and their ratio.

    python benchmarks/bench_server_repair.py [--per-mechanism 12] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from scipy.stats import fisher_exact

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _vllm_double import serve  # the test double lives with the tests

from lm_failtrace.demo import doc_indices
from lm_failtrace.models import tiny_model_path
from lm_failtrace.record import run_eval
from lm_failtrace.record.tasks import tasks_dir
from lm_failtrace.repair import OPERATORS, RepairConfig, repair_run


def record_and_repair(
    name: str, model: str, model_args: str, work: Path, per_mechanism: int, config: RepairConfig
) -> tuple[pd.DataFrame, float]:
    """Record the problems with one backend, then repair with it; the table and repair time."""
    samples = json.dumps({"failtrace_arith": doc_indices(per_mechanism)})
    run_eval(["--model", model, "--model_args", model_args, "--tasks", "failtrace_arith",
              "--include_path", str(tasks_dir()), "--samples", samples, "--seed", "1",
              "--batch_size", "16", "--log_samples",
              "--output_path", str(work / name)])  # fmt: skip
    start = time.perf_counter()
    table = repair_run(work / name, work / f"{name}.parquet", config)
    return table.set_index("problem_id"), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-mechanism", type=int, default=12)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--num-concurrent", type=int, default=4)
    args = parser.parse_args()
    config = RepairConfig(trials=args.trials, attempts=args.attempts)
    spec, anc = tiny_model_path("specialist"), tiny_model_path("ancestor")
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(spec) as spec_server,
        serve(anc) as anc_server,
    ):
        work = Path(tmp)
        hf, hf_s = record_and_repair(
            "hf", "failtrace-hf", f"pretrained={spec},ancestor={anc}", work,
            args.per_mechanism, config,
        )  # fmt: skip
        server_args = (
            f"base_url={spec_server.url},ancestor_url={anc_server.url},"
            f"num_concurrent={args.num_concurrent}"
        )
        server, server_s = record_and_repair(
            "server", "failtrace-local-completions", server_args, work, args.per_mechanism, config
        )
    shared = hf.index.intersection(server.index)
    trials = args.trials * len(shared)
    print(f"failure units: hf {len(hf)}, servers {len(server)}, shared {len(shared)}; "
          f"{args.trials} trials x {args.attempts} attempts each")  # fmt: skip
    p_values = {}
    for op in OPERATORS:
        wins = [round(t.loc[shared, op].sum() * args.trials) for t in (hf, server)]
        p_values[op] = fisher_exact([[w, trials - w] for w in wins]).pvalue
        print(f"  {op:20s} hf {wins[0]:4d}/{trials}  servers {wins[1]:4d}/{trials}  "
              f"Fisher p = {p_values[op]:.3f}")  # fmt: skip
    ordered = sorted(p_values.values())
    holm = min(min(1.0, p * (len(ordered) - i)) for i, p in enumerate(ordered))
    verdict = "agree" if holm > 0.05 else "DISAGREE"
    print(f"smallest Holm-adjusted p over the 7 operators: {holm:.3f} -> rates {verdict} "
          "within binomial noise (alpha 0.05)")  # fmt: skip
    print(f"repair wall time: hf {hf_s:.1f} s, servers {server_s:.1f} s "
          f"({server_s / hf_s:.1f}x; the servers are test doubles on this CPU)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Recording through completions servers: with the ancestor vs without vs lm-eval's stock backend.

Two servers are started by this script: processes of ``tests/_vllm_double.py``, the TEST DOUBLE
of vLLM's completions server that the tests use (the bundled tiny specialist and ancestor, sampled
with ``failtrace-hf``'s loop; each server samples one request at a time, as one GPU would). The
same requests (``failtrace_arith``, the same docs, 16 repeats, the task's sampling settings) are
recorded three ways, with the same ``num_concurrent``, through ``lm_eval.simple_evaluate``:

(a) ``failtrace-local-completions`` with ``ancestor_url``: top-K log-probs with every sampled
    token, one ancestor scoring request per batch of rollouts, logit features per rollout;
(b) ``failtrace-local-completions`` without it (the black-box recording);
(c) lm-eval's stock ``local-completions`` (``tokenizer_backend=none``: text prompts, no
    tokenizer download; it sends the same seed with every repeat).

(a) and (b) keep a journal as ``failtrace eval`` does by default. Target: (a)/(b) <= 1.5x. The
rounds run a, b, c in turn and keep each one's best wall time (and least CPU time, of this
process and both servers: on a shared machine the steadier number). The generated characters of
each run are printed, since (c)'s repeats share one seed and may end differently.

    python benchmarks/bench_server.py [--docs 24] [--num-concurrent 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lm_failtrace.models import tiny_model_path
from lm_failtrace.record.tasks import tasks_dir

TASK = "failtrace_arith"


def run(model: str, model_args: str, docs: list[int]) -> tuple[float, list[list[str]]]:
    """Seconds to record the docs, and every doc's rollout texts (in doc order)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(tasks_dir())], include_defaults=False)
    start = time.perf_counter()
    results: Any = lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[TASK],
        task_manager=manager,
        samples={TASK: docs},
        log_samples=True,
    )
    seconds = time.perf_counter() - start
    samples = sorted(results["samples"][TASK], key=lambda s: s["doc_id"])
    return seconds, [[str(r) for r in s["resps"][0]] for s in samples]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by this process and the given processes (Linux ``/proc``)."""
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24, help="problems (spread over the levels)")
    parser.add_argument("--num-concurrent", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="a, b, c in turn; best time kept")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _vllm_double import serve

    from lm_failtrace.demo import doc_indices
    from lm_failtrace.record.backends import register

    register()
    docs = doc_indices(max(1, args.docs // 4))
    spec, anc = tiny_model_path("specialist"), tiny_model_path("ancestor")
    concurrent = f"num_concurrent={args.num_concurrent}"
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    texts: dict[str, list[list[str]]] = {}
    with (
        serve(spec, "--served-model-name", "specialist") as specialist,
        serve(anc, "--served-model-name", "ancestor") as ancestor,
        tempfile.TemporaryDirectory() as scratch,
    ):
        ours = f"base_url={specialist.url},model=specialist,{concurrent}"
        configs = {
            "a": f"{ours},ancestor_url={ancestor.url},ancestor_model=ancestor",
            "b": ours,
            "c": f"base_url={specialist.url},model=specialist,tokenizer_backend=none,{concurrent}",
        }
        pids = [specialist.process.pid, ancestor.process.pid]
        for round_ in range(args.rounds):
            for name, model_args in configs.items():
                model = "local-completions" if name == "c" else "failtrace-local-completions"
                if name != "c":  # a journal, as `failtrace eval` keeps by default
                    model_args += f",journal={scratch}/{name}{round_}.jsonl"
                before = cpu_seconds(pids)
                seconds, texts[name] = run(model, model_args, docs)
                cpu[name] = min(cpu.get(name, float("inf")), cpu_seconds(pids) - before)
                best[name] = min(best.get(name, float("inf")), seconds)
                print(f"round {round_ + 1} ({name}): {seconds:.2f} s", file=sys.stderr)
    report(args, docs, best, cpu, texts)


def report(args: argparse.Namespace, docs: list[int], best: dict, cpu: dict, texts: dict) -> None:
    rollouts = sum(len(xs) for xs in texts["a"])
    pairs = [
        (x, y)
        for xs, ys in zip(texts["a"], texts["b"], strict=True)
        for x, y in zip(xs, ys, strict=True)
    ]
    same = sum(x == y for x, y in pairs)
    chars = {k: sum(len(t) for xs in v for t in xs) for k, v in texts.items()}
    print(
        f"requests: {len(docs)} problems x 16 repeats = {rollouts} rollouts, "
        f"num_concurrent={args.num_concurrent}, test-double servers on CPU, best of "
        f"{args.rounds} rounds (CPU: client + both servers)"
    )
    labels = {
        "a": "(a) failtrace-local-completions + ancestor",
        "b": "(b) failtrace-local-completions",
        "c": "(c) stock local-completions",
    }
    for key, label in labels.items():
        print(
            f"{label:43s} {best[key]:7.2f} s wall {cpu[key]:7.2f} s CPU "
            f"({chars[key]} chars generated)"
        )
    print(
        f"{'a/b (target <= 1.5)':43s} {best['a'] / best['b']:7.2f}x     {cpu['a'] / cpu['b']:7.2f}x"
    )
    print(f"{'b/c':43s} {best['b'] / best['c']:7.2f}x     {cpu['b'] / cpu['c']:7.2f}x")
    print(f"{'rollouts identical in (a) and (b)':43s} {same}/{rollouts}")


if __name__ == "__main__":
    main()

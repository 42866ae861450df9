"""failtrace-hf with the ancestor (logit features) vs lm-eval's stock ``hf`` backend.

Both run the same requests in one process: ``failtrace_arith`` on the bundled tiny pair, the same
docs, 16 repeats, the same batch size and token limit, through ``lm_eval.simple_evaluate``. The
stock backend samples with ``model.generate`` and records nothing extra; ours samples with one
seed per repeat, records token counts and finish reasons, and scores every rollout with the
ancestor for the logit features. Target: wall-time ratio <= 1.5x.

    python benchmarks/bench_hf_backend.py [--docs 60] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time

from lm_failtrace.models import tiny_model_path
from lm_failtrace.record.tasks import tasks_dir


def run(model: str, model_args: str, docs: list[int], batch_size: int) -> float:
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=[str(tasks_dir())], include_defaults=False)
    start = time.perf_counter()
    lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=["failtrace_arith"],
        task_manager=manager,
        samples={"failtrace_arith": docs},
        batch_size=batch_size,
        device="cpu",
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=60, help="problems (spread over the levels)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from lm_failtrace.demo import doc_indices
    from lm_failtrace.record.backends import register

    torch.set_num_threads(2)
    register()
    docs = doc_indices(max(1, args.docs // 6))
    spec, anc = tiny_model_path("specialist"), tiny_model_path("ancestor")
    stock = run("hf", f"pretrained={spec},dtype=float32", docs, args.batch_size)
    ours = run("failtrace-hf", f"pretrained={spec},ancestor={anc}", docs, args.batch_size)
    print(f"requests: {len(docs)} problems x 16 repeats, batch size {args.batch_size}, CPU")
    print(f"stock hf:                 {stock:8.2f} s")
    print(f"failtrace-hf + ancestor:  {ours:8.2f} s")
    print(f"ratio (target <= 1.5):    {ours / stock:8.2f}x")


if __name__ == "__main__":
    main()

"""Benchmark: ``failtrace profile`` on a synthetic lm-eval output of 1,000,000 rollouts.

Writes (untimed) an lm-eval output directory for one failtrace task, 10,000 docs x 100 repeats:

- ``samples_<task>_<ts>.jsonl`` as lm-eval 0.4.13 logs it: per doc the prompt in every one of
  the 100 ``arguments``, the 100 completion texts in ``resps`` (200-1500 characters each), the
  filtered answers, hashes, per-doc metrics and our ``failtrace_rollouts`` list;
- ``rollouts_<task>_<ts>.jsonl``, the side-car (one line per rollout, no text);
- ``results_<ts>.json``.

Then, each in a fresh subprocess (wall time; peak resident memory from ``os.wait4``'s rusage):

1. **floor**: read and ``json.loads`` every line of the files ``failtrace profile`` reads for
   this directory: the side-car (and the small results JSON). With a side-car present,
   ``profile`` does not open the samples log at all, so that is the honest floor.
2. ``failtrace profile DIR -o profile.parquet``.
3. for context, the samples-only path: the same directory without the side-car, where
   ``profile`` must parse the samples log; its floor is ``json.loads`` of every samples line.

Prints both times (wall, and CPU from rusage), the ratio and the peak memory per step, and
exits 1 if a target (ratio <= 3, peak memory < 1 GiB for ``profile``) is missed. Usage::

    python benchmarks/bench_profile.py [--docs 10000] [--repeats 100] [--tmpdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "failtrace_bench"
MODEL = "bench-model"
STAMP = "2026-06-10T12-00-00.000000"
GIB = 1024**3

#: Reads and parses every JSON line of the files given as arguments: the parsing floor.
FLOOR_SCRIPT = """
import json, sys
n = 0
for name in sys.argv[1:]:
    with open(name, encoding="utf-8") as fh:  # str input: json.loads' fastest path
        for line in fh:
            json.loads(line)
            n += 1
print(n)
"""

#: The real CLI entry point, as the console script runs it.
PROFILE_SCRIPT = "from lm_failtrace.cli import main; main()"


def write_run(root: Path, docs: int, repeats: int, seed: int = 0) -> Path:
    """Write the synthetic lm-eval output directory; returns the ``<model_name>`` folder."""
    rng = random.Random(seed)
    folder = root / MODEL
    folder.mkdir(parents=True)
    words = [
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "that",
        "for",
        "it",
        "as",
        "with",
        "was",
        "on",
        "be",
        "by",
        "this",
        "are",
        "at",
        "from",
    ]
    corpus = " ".join(rng.choice(words) for _ in range(400_000))  # texts are slices of it
    prompt_body = " ".join(rng.choice(words) for _ in range(120))
    gen_kwargs = {
        "until": ["Question:"],
        "do_sample": True,
        "temperature": 0.6,
        "max_gen_toks": 512,
    }
    (folder / f"results_{STAMP}.json").write_text(
        json.dumps({"results": {TASK: {}}, "model_name": MODEL, "config": {"model": "hf"}})
    )
    samples = (folder / f"samples_{TASK}_{STAMP}.jsonl").open("w", encoding="utf-8")
    sidecar = (folder / f"rollouts_{TASK}_{STAMP}.jsonl").open("w", encoding="utf-8")
    with samples, sidecar:
        for doc_id in range(docs):
            problem_id = f"bench-{doc_id:05d}"
            target = str(rng.randint(0, 999))
            skill = rng.random()
            prompt = f"Question: problem {doc_id}: {prompt_body}\nAnswer: Let's think step by step."
            rollouts, texts, answers = [], [], []
            for repeat in range(repeats):
                correct = rng.random() < skill
                answer = target if correct else rng.choice([None, str(rng.randint(0, 30))])
                length = rng.randint(200, 1500)
                offset = rng.randrange(len(corpus) - length)
                texts.append(corpus[offset : offset + length] + f" The answer is {answer}.")
                answers.append(answer or "[invalid]")
                tokens = length // 4
                record = {
                    "model": MODEL,
                    "task": TASK,
                    "doc_id": doc_id,
                    "problem_id": problem_id,
                    "repeat": repeat,
                    "seed": 1234 + 1_000_003 * doc_id + repeat,
                    "answer": answer,
                    "correct": correct,
                    "generated_tokens": tokens,
                    "finish_reason": "length" if tokens >= 370 else "stop",
                }
                sidecar.write(json.dumps(record) + "\n")
                del record["model"]
                rollouts.append(record)
            n_correct = sum(r["correct"] for r in rollouts)
            line = {
                "doc_id": doc_id,
                "doc": {"question": f"problem {doc_id}", "answer": target, "id": problem_id},
                "target": target,
                "arguments": {
                    f"gen_args_{i}": {"arg_0": prompt, "arg_1": gen_kwargs} for i in range(repeats)
                },
                "resps": [[t] for t in texts],
                "filtered_resps": answers,
                "filter": "failtrace",
                "metrics": ["pass@1", "failtrace_rollouts"],
                "doc_hash": f"{rng.getrandbits(128):032x}",
                "prompt_hash": f"{rng.getrandbits(128):032x}",
                "target_hash": f"{rng.getrandbits(128):032x}",
                "pass@1": n_correct / repeats,
                "failtrace_rollouts": rollouts,
            }
            samples.write(json.dumps(line, ensure_ascii=False) + "\n")
            if (doc_id + 1) % 1000 == 0:
                print(f"  wrote {doc_id + 1:,}/{docs:,} docs", file=sys.stderr, flush=True)
    return folder


def measure(argv: list[str]) -> tuple[float, float, float, str]:
    """Run ``argv`` in a fresh process: (wall s, CPU s = user + sys, peak RSS bytes, stdout).

    CPU time is reported beside wall time because a shared machine inflates wall time by
    however much other work is running; the rusage of ``os.wait4`` is that one child's own.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]}... exited {proc.returncode}:\n{out}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss * 1024.0, out  # ru_maxrss is in KiB on Linux


def compare(label: str, floor_files: list[Path], target: Path, output: Path) -> dict:
    """Time the floor and ``failtrace profile`` for one input; print and return the numbers."""
    floor_s, floor_cpu, floor_rss, count = measure(
        [sys.executable, "-c", FLOOR_SCRIPT, *map(str, floor_files)]
    )
    prof_s, prof_cpu, prof_rss, _ = measure(
        [sys.executable, "-c", PROFILE_SCRIPT, "profile", str(target), "-o", str(output)]
    )
    size = sum(p.stat().st_size for p in floor_files)
    ratio = prof_s / floor_s
    print(f"[{label}]")
    print(
        f"  floor   : json.loads of {int(count):,} lines in {len(floor_files)} file(s), "
        f"{size / GIB:.2f} GiB: {floor_s:.2f} s wall ({floor_cpu:.2f} s CPU), "
        f"peak RSS {floor_rss / 2**20:.0f} MiB"
    )
    print(
        f"  profile : {prof_s:.2f} s wall ({prof_cpu:.2f} s CPU), "
        f"peak RSS {prof_rss / 2**20:.0f} MiB"
    )
    print(f"  ratio   : {ratio:.2f}x the floor (wall), {prof_cpu / floor_cpu:.2f}x (CPU)")
    return {"floor_s": floor_s, "profile_s": prof_s, "ratio": ratio, "peak_rss": prof_rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--tmpdir", type=Path, default=None, help="where to write the run")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic run")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_profile_", dir=args.tmpdir))
    try:
        start = time.perf_counter()
        folder = write_run(root / "runs", args.docs, args.repeats)
        samples = folder / f"samples_{TASK}_{STAMP}.jsonl"
        sidecar = folder / f"rollouts_{TASK}_{STAMP}.jsonl"
        results = folder / f"results_{STAMP}.json"
        print(
            f"synthetic run: {args.docs:,} docs x {args.repeats} repeats = "
            f"{args.docs * args.repeats:,} rollouts; samples {samples.stat().st_size / GIB:.2f} "
            f"GiB, side-car {sidecar.stat().st_size / GIB:.2f} GiB "
            f"(written in {time.perf_counter() - start:.0f} s, untimed)"
        )
        main_run = compare(
            "run directory with side-car (what `failtrace profile` reads: side-car + results)",
            [sidecar, results],
            root / "runs",
            root / "profile.parquet",
        )
        sidecar.rename(root / sidecar.name)  # now only the samples log holds the rollouts
        compare(
            "context: samples log only (no side-car; `profile` parses every samples line)",
            [samples, results],
            root / "runs",
            root / "profile_samples.parquet",
        )
        ok = main_run["ratio"] <= 3.0 and main_run["peak_rss"] < GIB
        print(
            f"targets (ratio <= 3, peak < 1 GiB, run directory with side-car): "
            f"{'met' if ok else 'MISSED'}"
        )
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

"""Every repair operator through two completions servers, against the HF loop it stands in for.

The servers are processes of ``tests/_vllm_double.py``, a TEST DOUBLE of vLLM's completions
server (vLLM needs a GPU) serving the bundled tiny pair over real sockets. Its sampling is
``failtrace-hf``'s loop, so the HF operators (:func:`lm_failtrace.repair.steering.run_plans`) are
the reference: up to an operator's change the two generate the same tokens from the same seed,
and the changed token is the same (top-K mixture argmax = full-vocabulary argmax here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _vllm_double import serve
from scipy.stats import fisher_exact

from lm_failtrace.models import tiny_model_path
from lm_failtrace.record.backends.server import CompletionsServer
from lm_failtrace.repair.operators import OPERATORS
from lm_failtrace.repair.server_steering import ServerSteering, mixture_argmax
from lm_failtrace.repair.steering import RowPlan, run_plans

# A five-step chain the specialist restates first (verbosity), so rows run past L tokens.
PROMPT = "Question: Start with 2. Add 4. Add 2. Add 1. Subtract 4. Subtract 2.\nAnswer:"
L = 40
SEEDS = (3, 11, 17, 29)


@pytest.fixture(scope="module")
def doubles():
    """The specialist's and the ancestor's vLLM test doubles, started once."""
    with serve(tiny_model_path("specialist")) as spec, serve(tiny_model_path("ancestor")) as anc:
        yield spec, anc


@pytest.fixture(scope="module")
def steering(doubles) -> ServerSteering:
    spec, anc = doubles
    return ServerSteering(
        CompletionsServer(spec.url), CompletionsServer(anc.url, argument="ancestor_url"), 20
    )


@pytest.fixture(scope="module")
def hf():
    """The same pair in-process, for the reference loop."""
    import torch

    from lm_failtrace.record.backends.hf import FailtraceHF

    torch.set_num_threads(1)
    backend = FailtraceHF(pretrained=str(tiny_model_path("specialist")), dtype="float32",
                          ancestor=str(tiny_model_path("ancestor")))  # fmt: skip
    return backend


def _both(hf, steering: ServerSteering, plans: list[RowPlan]):
    prompt = hf.encode_prompt(PROMPT, L)
    reference = run_plans(hf.model, hf.tokenizer, hf.vocab, prompt, plans, (), hf.ancestor)
    served = steering.run(prompt, plans, ())
    return reference, served


def test_plain_plans_are_the_hf_samples(hf, steering) -> None:
    """retry, budget and temp_shift: one request, the very sample of the same seed."""
    plans = [RowPlan(seed=s, max_new_tokens=m, temperature=t)
             for s in SEEDS for m, t in ((L, 0.6), (4 * L, 0.6), (L, 1.0))]  # fmt: skip
    reference, served = _both(hf, steering, plans)
    assert [a.text for a in served] == [a.text for a in reference]
    assert [a.generated_tokens for a in served] == [a.generated_tokens for a in reference]


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_steered_rows_change_at_the_detector_fire_step(hf, steering, mode: str) -> None:
    """Same fire step as the in-loop detector, same prefix, same steered token(s)."""
    plans = [RowPlan(seed=s, max_new_tokens=L, mode=mode, threshold=0.0) for s in SEEDS]
    plain = [RowPlan(seed=s, max_new_tokens=L) for s in SEEDS]
    reference, served = _both(hf, steering, plans + plain)
    fired = [a.fired_at for a in served[: len(SEEDS)]]
    assert fired == [a.fired_at for a in reference[: len(SEEDS)]]
    assert all(f is not None for f in fired)
    for ref, got, base in zip(reference, served, served[len(SEEDS) :], strict=False):
        t = got.fired_at
        assert got.text[:t] == base.text[:t]  # char-level tokenizer: position t is character t
        if mode == "dense":
            assert got.text == ref.text  # the mixture argmax at every step from t on
        else:
            assert got.text[t] == ref.text[t]


def test_sparse_steer_random_steers_at_its_position(hf, steering) -> None:
    plans = [RowPlan(seed=s, max_new_tokens=L, mode="random", position=25) for s in SEEDS]
    reference, served = _both(hf, steering, plans)
    assert [a.fired_at for a in served] == [a.fired_at for a in reference] == [25] * len(SEEDS)
    assert [a.text[:26] for a in served] == [a.text[:26] for a in reference]


def test_local_temp_redraws_at_the_fire_step(hf, steering) -> None:
    plans = [RowPlan(seed=s, max_new_tokens=L, mode="local_temp", threshold=0.0,
                     local_temperature=2.0) for s in range(12)]  # fmt: skip
    plain = [RowPlan(seed=s, max_new_tokens=L) for s in range(12)]
    reference, served = _both(hf, steering, plans + plain)
    lifted, base = served[:12], served[12:]
    assert [a.fired_at for a in lifted] == [a.fired_at for a in reference[:12]]
    for got, b in zip(lifted, base, strict=True):
        assert got.text[: got.fired_at] == b.text[: got.fired_at]
    assert any(g.text != b.text for g, b in zip(lifted, base, strict=True))


def test_mixture_argmax_over_two_top_k_lists() -> None:
    spec, anc = {1: -0.1, 2: -2.5, 3: -4.0}, {2: -0.2, 4: -1.0, 1: -3.0}
    # 1: .7*-.1 + .3*-3 = -0.97; 2: .7*-2.5 + .3*-.2 = -1.81; 4: .7*-4 + .3*-1 = -3.1
    assert mixture_argmax(spec, anc, 0.7) == 1
    assert mixture_argmax(spec, anc, 0.1) == 2


# -- acceptance: `failtrace repair` with all seven operators, HF against the servers ------------


def _failtrace(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "failtrace"), *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def repaired(doubles, tmp_path_factory) -> dict:
    """The demo pair recorded twice (failtrace-hf; the servers), each repaired by its backend."""
    from lm_failtrace.demo import doc_indices
    from lm_failtrace.record.tasks import tasks_dir

    spec, anc = doubles
    work = tmp_path_factory.mktemp("server-repair")
    samples = json.dumps({"failtrace_arith": doc_indices(2)})
    models = {
        "hf": ("failtrace-hf", f"pretrained={tiny_model_path('specialist')},"
                               f"ancestor={tiny_model_path('ancestor')}"),
        "server": ("failtrace-local-completions",
                   f"base_url={spec.url},ancestor_url={anc.url},num_concurrent=4"),
    }  # fmt: skip
    tables = {}
    for name, (model, args) in models.items():
        _failtrace("eval", "--model", model, "--model_args", args, "--tasks", "failtrace_arith",
                   "--include_path", str(tasks_dir()), "--samples", samples, "--seed", "1",
                   "--batch_size", "16", "--log_samples", "--output_path", f"runs-{name}",
                   cwd=work)  # fmt: skip
        _failtrace("repair", f"runs-{name}", "-o", f"{name}.parquet", "--trials", "2", cwd=work)
        tables[name] = pd.read_parquet(work / f"{name}.parquet").set_index("problem_id")
    (results,) = (work / "runs-server").rglob("results_*.json")
    tables["server_config"] = json.loads(results.read_text(encoding="utf-8"))["config"]
    return tables


def test_repair_through_servers_agrees_with_hf(repaired) -> None:
    """Fisher's exact test per operator on the pooled trials (rescued or not), Holm-corrected
    over the seven operators at 0.05: no operator's rescue rate differs between the paths."""
    hf, server = repaired["hf"], repaired["server"]
    shared = hf.index.intersection(server.index)
    assert len(shared) >= 0.9 * max(len(hf), len(server)) and len(shared) >= 5
    trials = 2 * len(shared)
    p_values = {}
    for op in OPERATORS:
        wins = [round(t.loc[shared, op].sum() * 2) for t in (hf, server)]
        table = [[wins[0], trials - wins[0]], [wins[1], trials - wins[1]]]
        p_values[op] = fisher_exact(table).pvalue
        print(f"{op:20s} hf {wins[0]}/{trials}  server {wins[1]}/{trials}  p={p_values[op]:.3f}")
    ordered = sorted(p_values.values())
    holm = [p * (len(ordered) - i) for i, p in enumerate(ordered)]
    assert min(holm) > 0.05, p_values
    # the steering operators did something: they beat retry on the forgotten_skill units
    skill = [p for p in shared if "forgotten_skill" in p]
    assert server.loc[skill, "sparse_steer"].mean() > server.loc[skill, "retry"].mean()
    assert np.isfinite(server.loc[shared, "dense_steer_tokens"]).all()


def test_the_run_says_its_features_come_from_top_k_lists(repaired) -> None:
    """The run's results JSON (beside its side-car) records the server path's approximation."""
    config = repaired["server_config"]
    assert config["logit_top_k"] == 20
    assert config["logit_features"] == "top-K log-probs from two completions servers"
    assert config["ancestor_scoring"] == "prompt_logprobs"

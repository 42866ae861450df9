"""The evaluator plugin through mlflow.models.evaluate, and report.html in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from lm_failtrace.analysis import AnalysisConfig
from lm_failtrace.profiles import PAPER_OPERATORS, read_profiles
from lm_failtrace.tracking.landscape import compute_landscape

pytestmark = pytest.mark.slow

PAYLOAD = (
    '<script>document.title="pwned";'
    'document.body.appendChild(document.createElement("b")).id="pwned"</script>'
)


def _rollouts(profiles: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """n rollouts per problem; problem i fails (i % 3) + 1 times, wrong answers vary by i."""
    rows = []
    for i, unit in enumerate(profiles.itertuples(index=False)):
        failures = i % 3 + 1
        for r in range(n):
            wrong = r < failures
            rows.append({
                "model": unit.model, "task": unit.task, "problem_id": unit.problem_id,
                "repeat": r, "answer": str((i * r) % 5) if wrong else "42", "correct": not wrong,
                "generated_tokens": 10 + r, "finish_reason": "stop",
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_evaluator_plugin_logs_landscape_on_the_model(mlflow_server, sft4b_csv) -> None:
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry

    assert "failtrace" in mlflow.models.list_evaluators()
    evaluator = _model_evaluation_registry.get_evaluator("failtrace")
    assert type(evaluator).__module__ == "lm_failtrace_mlflow.evaluator"

    profiles = pd.read_csv(sft4b_csv, dtype={"problem_id": str})
    rescue = profiles[["model", "task", "problem_id", *PAPER_OPERATORS]]
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("failtrace-evaluate-test")
    model = mlflow.create_external_model(name="evaluated", model_type="llm")
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            data=_rollouts(profiles),
            model_type="text",  # MLflow insists on a model type (or extra metrics)
            evaluators=["failtrace"],
            model_id=model.model_id,
            evaluator_config={"failtrace": {"rescue": rescue, "n_repeats": 2}},
        )
    # Every problem has 1-3 failures out of 4: pass@1 = mean of (4 - failures) / 4.
    expected = np.mean([(4 - (i % 3 + 1)) / 4 for i in range(len(profiles))])
    assert result.metrics["gsm8k.pass_at_1"] == pytest.approx(expected)
    assert result.metrics["gsm8k.n_units"] == len(profiles)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    logged = {m.key: m.value for m in client.get_logged_model(model.model_id).metrics}
    assert logged["gsm8k.pass_at_1"] == pytest.approx(expected)
    assert "gsm8k.honest.all_failures.paper_rule.ci_high" in logged
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "analysis.json", "profiles.csv"} <= files


def _probe(chromium: str, page: Path, tmp_path: Path) -> tuple[dict, str]:
    """Load ``page`` headless; a probe script records images, tables and title into the DOM."""
    probe = (
        "<script>window.addEventListener('load',()=>{const p=document.createElement('pre');"
        "p.id='probe';p.textContent=JSON.stringify({widths:[...document.images].map(i=>"
        "i.naturalWidth),tables:document.querySelectorAll('table').length,title:document.title,"
        "pwned:!!document.getElementById('pwned')});document.body.appendChild(p)});</script>"
    )
    # Without the page's CSP, only escaping stands between the payload and execution.
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text())
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", probe + "</body>"))
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    return json.loads(html.unescape(match.group(1))), proc.stdout


def test_report_renders_figures_and_tables_and_escapes_text(
    chromium, sft4b_csv, tmp_path: Path
) -> None:
    table = read_profiles(sft4b_csv)
    table.frame["problem_id"] = [f"{PAYLOAD}#{i}" for i in range(len(table))]
    landscape = compute_landscape(
        table, AnalysisConfig(n_repeats=2), title="Report <i>test</i>", context={"model": PAYLOAD},
        with_router=False,
    )  # fmt: skip
    page = tmp_path / "report.html"
    page.write_text(landscape.report_html)
    assert "Content-Security-Policy" in landscape.report_html
    assert PAYLOAD not in landscape.report_html
    result, dom = _probe(chromium, page, tmp_path)
    assert result["pwned"] is False
    assert result["title"] == "Report <i>test</i>"
    assert len(result["widths"]) == len(landscape.figures) >= 2
    assert all(w > 0 for w in result["widths"])
    assert result["tables"] >= 5
    # The payload is in the page as text (serialised escaped): the model, and every failure unit
    # (the units table lists them all, up to 500 per cell). More checks: test_report_browser.py.
    assert dom.count(html.escape(PAYLOAD, quote=False)) == 1 + len(table)

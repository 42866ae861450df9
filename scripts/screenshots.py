"""Screenshots, 1400 px wide, of what a person reads: report.html, compare.html, the MLflow pages.

Run after ``failtrace demo`` (it reads the demo's MLflow database)::

    .venv/bin/python scripts/screenshots.py --workdir failtrace-demo --out screenshots

Writes ``report.png`` (the demo's report.html, as logged), ``compare.png`` (``failtrace compare``
on two cells of the bundled paper data, relabelled as two versions of one model and task) and
``model_version.png`` (the demo's registered model version in the MLflow UI, served by a real
``mlflow server`` on the demo's database). Needs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import click

WIDTH = 1400
BIN = Path(sys.executable).parent


def shoot(url: str, out: Path, height: int, wait_ms: int = 0) -> Path:
    """A ``WIDTH`` x ``height`` screenshot of ``url`` by headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise click.ClickException("Debian's chromium is needed (apt-get install chromium)")
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={WIDTH},{height}", f"--screenshot={out}",
    ]  # fmt: skip
    if wait_ms:
        cmd.append(f"--virtual-time-budget={wait_ms}")
    subprocess.run([*cmd, url], check=True, capture_output=True, timeout=120)
    click.echo(f"wrote {out}")
    return out


def report_html(tracking_uri: str, model: str, into: Path) -> Path:
    """The report.html logged with ``model`` version 1, downloaded from its run."""
    from mlflow import MlflowClient

    from lm_failtrace.tracking.registry import TAG_RUN

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(model, "1").tags[TAG_RUN]
    return Path(client.download_artifacts(run_id, "report.html", str(into)))


def compare_html(into: Path) -> Path:
    """``failtrace compare`` of two paper cells, relabelled as two versions of one model/task."""
    from lm_failtrace.datasets import paper_profiles

    frame = paper_profiles().frame
    paths = []
    for name, cell in (("v1", "sft0p6b|gsm8k"), ("v2", "sft4b|gsm8k")):
        part = frame.loc[frame["cell"] == cell].assign(model="qwen3-sft", cell="qwen3-sft|gsm8k")
        paths.append(into / f"{name}.csv")
        part.to_csv(paths[-1], index=False)
    page = into / "compare.html"
    subprocess.run(
        [str(BIN / "failtrace"), "compare", *map(str, paths), "-o", str(page)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_version_page(tracking_uri: str, model: str, out: Path) -> Path:
    """Serve the demo's database with ``mlflow server`` and shoot the model version page."""
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", tracking_uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise click.ClickException("mlflow server did not start") from None
                time.sleep(0.5)
        return shoot(f"{base}/#/models/{model}/versions/1", out, 1400, wait_ms=20000)
    finally:
        server.terminate()
        server.wait(timeout=30)


@click.command()
@click.option("--workdir", default="failtrace-demo", type=click.Path(path_type=Path))
@click.option("--out", default="screenshots", type=click.Path(path_type=Path))
def main(workdir: Path, out: Path) -> None:
    """Write report.png, compare.png and model_version.png into OUT."""
    from lm_failtrace.demo import MODEL_NAME

    database = (workdir / "mlflow.db").resolve()
    if not database.is_file():
        raise click.ClickException(f"{database}: run `failtrace demo` first")
    tracking_uri = f"sqlite:///{database}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp)
        shoot(report_html(tracking_uri, MODEL_NAME, pages).as_uri(), out / "report.png", 9000)
        shoot(compare_html(pages).as_uri(), out / "compare.png", 5000)
    model_version_page(tracking_uri, MODEL_NAME, out / "model_version.png")


if __name__ == "__main__":
    main()

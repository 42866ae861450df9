"""Everything a failure landscape holds, computed before anything is written to MLflow.

Computing first (analysis, router, figures, report) means a bad table or a failing analysis stops
``failtrace log`` before a run exists; the MLflow side then only writes finished results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lm_failtrace.analysis import AnalysisConfig, analyze, fit_router
from lm_failtrace.formatting import to_jsonable
from lm_failtrace.profiles import ProfileTable
from lm_failtrace.report.html import render_report
from lm_failtrace.report.plots import report_figures


@dataclass
class Landscape:
    """One model's failure landscape.

    Attributes:
        table: the profiles it was computed from.
        analysis: :func:`lm_failtrace.analysis.analyze`'s document.
        router: :func:`lm_failtrace.analysis.fit_router`'s parameters (None when not fitted).
        figures: PNG file name -> bytes.
        report_html: the self-contained report.
    """

    table: ProfileTable
    analysis: dict[str, Any]
    router: dict[str, Any] | None
    figures: dict[str, bytes]
    report_html: str

    def analysis_json(self, cell: str | None = None) -> str:
        """The whole document, or ``config`` plus one cell's section."""
        doc = self.analysis
        if cell is not None:
            doc = {"config": doc["config"], "cells": {cell: doc["cells"][cell]}}
        return json.dumps(to_jsonable(doc), indent=2, allow_nan=False)


def compute_landscape(
    table: ProfileTable,
    config: AnalysisConfig,
    *,
    title: str,
    context: Mapping[str, Any],
    with_router: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Landscape:
    """Analyse ``table``, fit the router, draw the figures and render the report.

    Unset columns of ``config`` are the table's (:meth:`AnalysisConfig.resolved`).
    """
    config = config.resolved(table.schema)
    say = progress or (lambda _msg: None)
    analysis = to_jsonable(analyze(table, config, progress=progress))
    router = None
    if with_router:
        say("fitting the router (cross-validated policy selection)")
        router = to_jsonable(fit_router(table, config))
    say("drawing figures and the report")
    drawn = report_figures(table, config, analysis)
    figures = {f.name: f.png for f in drawn}
    html = render_report(
        analysis,
        table.frame,
        drawn,
        title=title,
        context=context,
        extra_columns=[*config.features, *config.operators],
        random_state=config.random_state,
    )
    return Landscape(table, analysis, router, figures, html)

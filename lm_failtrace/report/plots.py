"""PNG figures of an analysis: the routing map in z-space, and the regime mix per cell.

matplotlib is imported inside the function with the non-interactive Agg backend, so importing
this module is cheap and works on machines without a display.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pandas as pd

from lm_failtrace.analysis import REGIMES


def _save(fig: object, path: Path) -> Path:
    """Write atomically: a crash never leaves a truncated PNG behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_figures(units: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write ``routing_map_<cell>.png`` per cell and ``regime_mix.png``; return their paths.

    Args:
        units: :func:`lm_failtrace.analysis.routing_map` output (cell, z_<feature>..., route,
            regime).
        out_dir: folder to write into (created if needed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    zcols = [c for c in units.columns if c.startswith("z_")]
    pairs = list(itertools.combinations(zcols, 2)) or [(zcols[0], zcols[0])]
    routes = sorted(pd.unique(units["route"]))
    colours = {r: plt.cm.tab10(i % 10) for i, r in enumerate(routes)}
    regime_colours = {r: plt.cm.Set1(i) for i, r in enumerate(REGIMES)}
    written = []
    for cell, frame in units.groupby("cell", sort=False):
        fig, axes = plt.subplots(2, len(pairs), figsize=(4.2 * len(pairs), 8), squeeze=False)
        for col, (fx, fy) in enumerate(pairs):
            for row, (key, palette) in enumerate((("route", colours), ("regime", regime_colours))):
                ax = axes[row][col]
                for value, group in frame.groupby(key, sort=False):
                    ax.scatter(
                        group[fx], group[fy], s=10, alpha=0.7, color=palette[value], label=value
                    )
                ax.axhline(0, color="grey", lw=0.5)
                ax.axvline(0, color="grey", lw=0.5)
                ax.set_xlabel(fx)
                ax.set_ylabel(fy)
                ax.set_title(f"coloured by {key}", fontsize=9)
                if col == len(pairs) - 1:
                    ax.legend(fontsize=7, loc="best")
        fig.suptitle(f"Routing map in z-space (paper rule), cell {cell}")
        written.append(_save(fig, out / f"routing_map_{_slug(str(cell))}.png"))
        plt.close(fig)
    mix = pd.crosstab(units["cell"], units["regime"], normalize="index")
    mix = mix.reindex(columns=[r for r in REGIMES if r in mix.columns])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(mix) + 1.5))
    left = pd.Series(0.0, index=mix.index)
    for regime in mix.columns:
        ax.barh(mix.index, mix[regime], left=left, color=regime_colours[regime], label=regime)
        left += mix[regime]
    ax.set_xlabel("fraction of failure units")
    ax.set_title("Regime mix per cell")
    ax.legend(fontsize=8, loc="lower right")
    written.append(_save(fig, out / "regime_mix.png"))
    plt.close(fig)
    return written

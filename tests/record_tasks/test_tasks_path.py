"""``failtrace tasks-path``: the folder a user passes to lm-eval's --include_path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FAILTRACE = str(Path(sys.executable).parent / "failtrace")


def test_prints_a_folder_lm_eval_indexes_from_any_directory(tmp_path: Path):
    from lm_eval.tasks import TaskManager

    result = subprocess.run(
        [FAILTRACE, "tasks-path"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert (folder / "failtrace_arith" / "arith.jsonl").is_file()
    manager = TaskManager(include_path=[str(folder)], include_defaults=False)
    assert {"failtrace_arith", "failtrace_gsm8k"} <= set(manager.all_subtasks)
    assert "failtrace" in manager.all_tags  # --tasks failtrace runs them all

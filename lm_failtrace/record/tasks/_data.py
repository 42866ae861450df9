"""Where the shipped task folder and the bundled arith data live, and how lm-eval loads them.

The YAMLs are installed as the package ``lm_failtrace_tasks``; we locate it with
``importlib.resources`` so nothing depends on the current directory (lm-eval resolves relative
``data_files`` against the working directory, not the YAML's folder).
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

#: The bundled arith data, relative to the tasks folder.
ARITH_DATA = Path("failtrace_arith") / "arith.jsonl"


class _NoMetadataAdvice(logging.Filter):
    """Drop lm-eval's advice to pass ``--metadata``, logged for every ``custom_dataset`` task.

    It addresses task authors with configurable data; ``failtrace_arith``'s data takes no
    arguments, so every run would tell the user about an option that changes nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed to `--metadata`" not in record.getMessage()


# lm-eval resolves the YAML's ``!function`` (importing this module) before it loads the data.
logging.getLogger("lm_eval.api.task").addFilter(_NoMetadataAdvice())


def tasks_dir() -> Path:
    """The installed folder of failtrace task YAMLs (for lm-eval's ``--include_path``)."""
    return Path(str(resources.files("lm_failtrace_tasks")))


def arith_data_path() -> Path:
    """The bundled ``failtrace_arith`` JSONL (see :mod:`lm_failtrace.record.arith`)."""
    return tasks_dir() / ARITH_DATA


def load_arith(**_: Any) -> Any:
    """lm-eval ``custom_dataset`` hook: the bundled arith problems as the ``test`` split.

    lm-eval passes the task's metadata and model arguments as keyword arguments; none of them
    changes the data, so they are ignored. Rows are read in file order (doc ids follow it).
    """
    import datasets

    with arith_data_path().open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

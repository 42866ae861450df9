"""The pass-through filter of every failtrace task: keep all N repeats, extract each one's answer.

lm-eval's default filter keeps only the first of a task's repeats. Every failtrace task instead
declares one filter step, :class:`RecordRollouts`, which runs the task's answer-extraction steps
over *every* response and returns, per doc, N :class:`ExtractedAnswer` strings. Each is the
extracted answer (what lm-eval logs as ``filtered_resps``) and carries the rollout's partial
record: stable problem id, repeat, seed, token count, finish reason and logit aggregates from
the backend's :class:`~lm_failtrace.record.rollout_text.RolloutText` metadata (``None`` from a
stock backend: unknown, never guessed). Scoring happens afterwards, in lm-eval's own metric call
(:func:`~lm_failtrace.record.tasks.failtrace`), where the target is rendered by lm-eval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lm_failtrace.errors import InputError
from lm_failtrace.record.rollout_text import rollout_meta
from lm_failtrace.record.tasks._answers import NO_MATCH
from lm_failtrace.rollouts import RolloutRecord

#: Metadata keys copied from the backend into each rollout record when present.
_META_KEYS = ("seed", "generated_tokens", "finish_reason")
_LOGIT_KEYS = ("spread", "concentration", "logit_dispersion")


class ExtractedAnswer(str):
    """An extracted final answer (the string) plus its rollout's partial record.

    Attributes:
        record: the rollout record without ``correct`` (added when scored); ``answer`` is None
            when nothing could be extracted.
    """

    record: RolloutRecord

    def __new__(cls, text: str, record: RolloutRecord) -> ExtractedAnswer:
        obj = super().__new__(cls, text)
        obj.record = record
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExtractedAnswer, (str(self), self.record))


def problem_id(
    doc: Mapping[str, Any],
    *,
    prefix: str,
    field: str | None = None,
    hash_field: str | None = None,
) -> str:
    """The stable id of a problem: never lm-eval's ``doc_id``, which is only a row index.

    Args:
        doc: the dataset row.
        prefix: put before a hash (e.g. ``gsm8k`` -> ``gsm8k-<sha1[:12]>``).
        field: take the id from this column as is (e.g. arith's ``problem_id``).
        hash_field: hash this column's text (e.g. GSM8K's ``question``).
        With neither, the whole row (canonical JSON, sorted keys) is hashed.
    """
    if field is not None:
        if field not in doc:
            raise InputError(f"the task's documents have no {field!r} field", column=field)
        return str(doc[field])
    if hash_field is not None:
        if hash_field not in doc:
            raise InputError(
                f"the task's documents have no {hash_field!r} field", column=hash_field
            )
        text = str(doc[hash_field])
    else:
        text = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def _build_step(step: Mapping[str, Any]) -> Any:
    from lm_eval.api.registry import get_filter

    kwargs = {key: value for key, value in step.items() if key != "function"}
    return get_filter(step["function"])(**kwargs)


class RecordRollouts:
    """lm-eval filter step that keeps every repeat and attaches its rollout record.

    Args:
        task: the task name written into each rollout record.
        steps: the answer-extraction filter steps, in lm-eval's YAML form
            (``{"function": name_or_callable, **kwargs}``), applied to the list of all N responses
            of each doc; none may drop or merge responses (``take_first``, ``majority_vote``).
        id_field, id_hash_field, id_prefix: how to get the stable problem id (see
            :func:`problem_id`; the prefix defaults to the task name).
        no_answer: extracted values that mean "no answer" (lm-eval's regex fallback, empty).
    """

    def __init__(
        self,
        task: str,
        steps: Sequence[Mapping[str, Any]] = (),
        id_field: str | None = None,
        id_hash_field: str | None = None,
        id_prefix: str | None = None,
        no_answer: Sequence[str] = (NO_MATCH, ""),
    ) -> None:
        self.task = task
        self.steps = list(steps)
        self.id_field = id_field
        self.id_hash_field = id_hash_field
        self.id_prefix = task if id_prefix is None else id_prefix
        self.no_answer = tuple(no_answer)

    def apply(
        self, resps: Iterable[Sequence[str]], docs: Sequence[Mapping[str, Any]]
    ) -> list[list[ExtractedAnswer]]:
        responses = [list(r) for r in resps]
        extracted: list[list[Any]] = [[str(r) for r in rs] for rs in responses]
        for step in self.steps:
            extracted = [list(e) for e in _build_step(step).apply(extracted, docs)]
        out = []
        for raw, answers, doc in zip(responses, extracted, docs, strict=True):
            if len(answers) != len(raw):
                raise InputError(
                    f"task {self.task}: an answer-extraction step turned {len(raw)} responses "
                    f"into {len(answers)}; failtrace needs one answer per repeat",
                    column="filter_list",
                )
            pid = problem_id(
                doc, prefix=self.id_prefix, field=self.id_field, hash_field=self.id_hash_field
            )
            pairs = enumerate(zip(raw, answers, strict=True))
            out.append([self._extracted(pid, i, r, a) for i, (r, a) in pairs])
        return out

    def _extracted(self, pid: str, position: int, raw: str, answer: Any) -> ExtractedAnswer:
        meta = rollout_meta(raw)
        text = str(answer)
        found = text.strip() not in self.no_answer
        repeat = meta.get("repeat")
        record: RolloutRecord = {
            "task": self.task,
            "doc_id": meta.get("doc_id"),
            "problem_id": pid,
            "repeat": position if repeat is None else int(repeat),
            "answer": text if found else None,
        }
        for key in _META_KEYS:
            record[key] = meta.get(key)  # type: ignore[literal-required]
        for key in _LOGIT_KEYS:
            if meta.get(key) is not None:
                record[key] = meta[key]  # type: ignore[literal-required]
        return ExtractedAnswer(text, record)

"""Numeric final-answer extraction for our tasks (arith, GSM8K).

Extraction is kept separate from scoring: the extracted string is compared to the target by
lm-eval's own ``exact_match``, so a failtrace task scores exactly like the task it is built on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: What lm-eval's ``regex`` filter returns when nothing matches; we use the same sentinel so
#: generated variants of stock tasks and our own tasks mark a missing answer alike.
NO_MATCH = "[invalid]"

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def normalize_number(raw: str) -> str:
    """Canonical text of a number: no ``$`` or thousands commas; ``18.00`` -> ``18``."""
    text = raw.replace("$", "").replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def extract_number(
    text: str, markers: Sequence[str] = ("####",), last_number: bool = False
) -> str | None:
    """The final numeric answer in ``text``, or None when there is none.

    Markers are tried in order; for a marker, the first number after its *last* occurrence is the
    answer (a model that restates the marker corrects itself). With ``last_number``, a text
    without any marker falls back to its last number: lenient, as GSM8K chain-of-thought answers
    often end with a bare number, but it would count an unfinished arith solution whose last step
    happens to be the answer, so the arith task keeps it off.

    Args:
        text: the completion.
        markers: answer markers such as ``"####"`` or ``"The answer is"``.
        last_number: fall back to the last number in the text.
    """
    for marker in markers:
        at = text.rfind(marker)
        if at >= 0:
            match = _NUMBER.search(text, at + len(marker))
            if match is not None:
                return normalize_number(match.group())
    if last_number:
        numbers = _NUMBER.findall(text)
        if numbers:
            return normalize_number(numbers[-1])
    return None


class NumericAnswer:
    """lm-eval filter step: each response -> its extracted number (or :data:`NO_MATCH`).

    lm-eval's filter protocol is duck-typed (``FilterEnsemble`` calls ``step().apply(resps,
    docs)``), so this module does not import lm-eval. Use it inside
    :class:`~lm_failtrace.record.tasks.RecordRollouts`'s ``steps``.

    Args:
        markers: answer markers, tried in order (see :func:`extract_number`).
        last_number: fall back to the last number in the completion.
    """

    def __init__(self, markers: Sequence[str] = ("####",), last_number: bool = False) -> None:
        self.markers = tuple(markers)
        self.last_number = last_number

    def apply(self, resps: Iterable[Sequence[str]], docs: Sequence[dict]) -> list[list[str]]:
        out = []
        for responses in resps:
            answers = [extract_number(str(r), self.markers, self.last_number) for r in responses]
            out.append([NO_MATCH if a is None else a for a in answers])
        return out

"""Numeric answer extraction used by failtrace_arith and failtrace_gsm8k."""

from __future__ import annotations

import pytest

from lm_failtrace.record.tasks import NO_MATCH, NumericAnswer, extract_number

GSM8K = ("####", "The answer is")


@pytest.mark.parametrize(
    ("text", "markers", "last_number", "expected"),
    [
        (" 37 + 45 = 82. 82 * 3 = 246. #### 246", ("####",), False, "246"),
        (" 5 - 9 = -4. #### -4", ("####",), False, "-4"),
        # an unfinished arith solution has no answer, even if its last step is right
        (" 37 + 45 = 82. 82 * 3 = 246", ("####",), False, None),
        (" #### 12 wait #### 13", ("####",), False, "13"),
        ("So she pays $1,234.00 in total. The answer is $1,234.", GSM8K, True, "1234"),
        ("5 + 4 = 9. The answer is 9.", GSM8K, True, "9"),
        ("5 + 4 = 9 toys", GSM8K, True, "9"),
        ("2.50 + 1.25 = 3.75", GSM8K, True, "3.75"),
        ("no number here", GSM8K, True, None),
        ("The answer is unclear, 7 - 5 = 2", ("The answer is",), False, "7"),
    ],
)
def test_extract_number(text, markers, last_number, expected):
    assert extract_number(text, markers, last_number) == expected


def test_filter_keeps_one_answer_per_response():
    out = NumericAnswer(markers=["####"]).apply([["#### 1", "x", "#### -2"]], [{}])
    assert out == [["1", NO_MATCH, "-2"]]

"""The paper's reference numbers (docs/method.md section 5), asserted wherever tests reach them."""

from __future__ import annotations


def assert_reference_section(section: dict) -> None:
    """Cell sft0p6b|gsm8k of an analysis document holds the paper's numbers, exactly."""
    assert section["n_units"] == 196
    assert section["regimes"]["counts"] == {"resample": 118, "steerable": 67, "beyond_reach": 11}
    pub = section["published"]
    assert pub["n_steerable"] == 67
    assert pub["routes"] == {
        "retry": 0,
        "dense_steer": 26,
        "sparse_steer": 20,
        "local_temp": 17,
        "sparse_steer_random": 4,
    }
    assert pub["n_fallback"] == 4 and pub["fallback"] == "sparse_steer_random"
    assert round(pub["rescue"]["routed"], 3) == 0.463
    expected = {
        "dense_steer": 0.439,
        "sparse_steer": 0.430,
        "local_temp": 0.417,
        "sparse_steer_random": 0.390,
        "retry": 0.248,
    }
    assert {op: round(v, 3) for op, v in pub["rescue"]["always"].items()} == expected
    assert round(pub["margin_over_best_fixed"], 3) == 0.024
    assert pub["best_fixed_in_hindsight"] == "dense_steer"

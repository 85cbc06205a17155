"""Every bad input of tests/reliability_cases.py ends in a clear error, in time, and loses nothing."""
import pytest

from reliability_cases import cases, check

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_ends_in_a_clear_error(case, tmp_path):
    outcome = check(case, tmp_path, in_process=True)
    assert outcome.status == "clear", f"{outcome.status}: {outcome.message}"

import pytest

from ccweb.accounts.checks import check_throttle_rates


@pytest.mark.parametrize("rate", ["20/min", "5/second", "100/hour", "1000/day"])
def test_it_accepts_well_formed_throttle_rates(throttle_rates, rate):
    throttle_rates(auth=rate)

    assert check_throttle_rates(None) == []


@pytest.mark.parametrize("rate", ["abc", "20", "20/fortnight", "-1/min", ""])
def test_it_names_the_variable_of_a_malformed_rate(throttle_rates, rate):
    throttle_rates(auth=rate)

    errors = check_throttle_rates(None)

    assert [error.msg.split(":")[0] for error in errors] == ["THROTTLE_AUTH_RATE"]

"""Settings from the environment: a default when unset, the value when valid, else one sentence
naming the variable (ConfigError), never a ValueError traceback."""

from __future__ import annotations

import pytest

from workerkit.errors import ConfigError
from workerkit.settings import port_setting, positive_int_setting, rate_setting, seconds_setting


def test_unset_is_the_default_and_a_valid_value_is_read() -> None:
    assert positive_int_setting("POOL", 16, env={}) == 16
    assert positive_int_setting("POOL", 16, env={"POOL": "3"}) == 3
    assert positive_int_setting("POOL", 16, env={"POOL": " 8 "}) == 8
    assert positive_int_setting("BATCH", 64, env={"BATCH": "2048"}, maximum=2048) == 2048
    assert port_setting("PORT", 8403, env={}) == 8403
    assert port_setting("PORT", 8403, env={"PORT": "65535"}) == 65535
    assert seconds_setting("WAIT_S", 5, env={"WAIT_S": "0.5"}) == 0.5
    assert seconds_setting("WAIT_S", 5, env={"WAIT_S": "0"}, zero_allowed=True) == 0


@pytest.mark.parametrize("raw", ["", "many", "1.5", "0", "-2", "0x10"])
def test_a_bad_count_names_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        positive_int_setting("AGENT_LLM_CONCURRENCY", 16, env={"AGENT_LLM_CONCURRENCY": raw})
    assert str(err.value) == f"AGENT_LLM_CONCURRENCY must be a positive whole number, got {raw!r}"


def test_a_count_above_its_maximum_is_refused_with_the_range() -> None:
    with pytest.raises(ConfigError, match=r"^BATCH must be a whole number from 1 to 2048, got '2049'$"):
        positive_int_setting("BATCH", 64, env={"BATCH": "2049"}, maximum=2048)


@pytest.mark.parametrize("raw", ["", "http", "0", "65536", "-1"])
def test_a_bad_port_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^HEALTH_PORT must be a port number between 1 and 65535, got "):
        port_setting("HEALTH_PORT", 8403, env={"HEALTH_PORT": raw})


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan"])
def test_bad_seconds_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^WAIT_S must be a positive number of seconds, got "):
        seconds_setting("WAIT_S", 5, env={"WAIT_S": raw})


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("0", None), ("2.5", 2.5), ("40", 40.0)])
def test_rate_setting_reads_a_limit_or_none(raw: str | None, expected: float | None) -> None:
    assert rate_setting("RATE", env={} if raw is None else {"RATE": raw}) == expected


@pytest.mark.parametrize("raw", ["-1", "fast", "nan", "inf"])
def test_rate_setting_refuses_what_is_not_a_rate(raw: str) -> None:
    with pytest.raises(ConfigError, match="RATE must be a number of tasks per second"):
        rate_setting("RATE", env={"RATE": raw})

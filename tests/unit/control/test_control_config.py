"""ControlConfig from the environment: defaults and sentences naming the variable."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Env
from services.control.config import ControlConfig


def test_defaults():
    config = ControlConfig.from_env(Env({}))
    assert config.server.listen == "127.0.0.1:50052"
    assert config.heartbeat_seconds == 1.0 and config.watch_queue_size == 1000


def test_heartbeat_from_env():
    assert ControlConfig.from_env(Env({"QUANTMESH_HEARTBEAT_SECONDS": "0.25"})).heartbeat_seconds == 0.25


@pytest.mark.parametrize("value, words", [("soon", "is not a number"), ("0", "below the minimum"),
                                          ("nan", "not a finite number"), ("7200", "above the maximum 3600")])
def test_bad_heartbeat_names_the_variable(value, words):
    with pytest.raises(ConfigError) as err:
        ControlConfig.from_env(Env({"QUANTMESH_HEARTBEAT_SECONDS": value}))
    assert "QUANTMESH_HEARTBEAT_SECONDS" in str(err.value) and words in str(err.value)

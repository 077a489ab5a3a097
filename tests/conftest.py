"""Shared fixtures."""

import pytest

from hub_server import LocalHub


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    """An olah server on 127.0.0.1 for the whole test session, stopped at the end."""
    hub = LocalHub(tmp_path_factory.mktemp("local_hub"))
    hub.start()
    yield hub
    hub.stop()

"""Shared fixtures: the tiny restoration model and CONTRIQUE (built by tiny_models.py, which also makes the tiny
SegFormers and holds every tiny config), the local Hub server and the bad-input world."""

import pytest
import torch

import tiny_models
from hub_server import LocalHub


@pytest.fixture
def tiny_restoration():
    """A tiny QuARF restoration model (BRISQUE quality), seeded, in eval mode: the identity at initialisation."""
    torch.manual_seed(0)
    return tiny_models.make_restoration()


@pytest.fixture
def tiny_contrique():
    """A tiny CONTRIQUE (random weights), seeded, in eval mode."""
    torch.manual_seed(0)
    return tiny_models.make_contrique()


@pytest.fixture(scope="session")
def bad_input_world(tmp_path_factory):
    """Tiny models, images, datasets and damaged files for the tests/test_bad_inputs*.py tables, made once."""
    from bad_input_world import make_world  # imports the CLI: only for the sessions that use it

    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    """An olah server on 127.0.0.1 for the whole test session, stopped at the end."""
    hub = LocalHub(tmp_path_factory.mktemp("local_hub"))
    hub.start()
    yield hub
    hub.stop()

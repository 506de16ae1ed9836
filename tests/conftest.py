import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXTURE = REPO / "tests" / "plugins" / "rnnlab-fixture"
sys.path.insert(0, str(FIXTURE))  # the fixture plugin is importable; its entry point is registered per test

os.environ.setdefault("RNNLAB_TEST", "1")


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)  # as the app serves; more threads only fight on a small shared host


@pytest.fixture
def fixture_task():
    import rnnlab_fixture

    return rnnlab_fixture.TASK


@pytest.fixture(scope="module")
def splits(request):
    """The synthetic splits (seed 0) of the test module's ``TASK``."""
    return request.module.TASK.synthetic_data(0)


@pytest.fixture(scope="module")
def model(request, splits):
    """An untrained model of the test module's ``TASK`` (seed 0, eval mode), built from ``splits``' meta. A module
    with a model of its own defines its own ``model`` fixture."""
    import torch

    task = request.module.TASK
    torch.manual_seed(0)
    return task.build_model(task.config, splits.meta).eval()


@pytest.fixture(scope="module")
def app_without_plugins():
    """The app served on a free port without installed plugins (RNNLAB_NO_ENTRY_POINTS=1): its base URL. Skips
    where Debian's chromium is missing (the browser tests that use it drive Chromium)."""
    import os

    from test_browser import CHROMIUM, app_server

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    with app_server(env={"RNNLAB_NO_ENTRY_POINTS": "1"}) as base:
        yield base

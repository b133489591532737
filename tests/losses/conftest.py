"""The loss suites run on both backends: ``backend`` makes ``backend="auto"`` (every call's default) pick the
dense or the tiled path at every size (a module opts in with ``pytestmark = pytest.mark.usefixtures("backend")``)."""

import pytest

from hscl import _engine


@pytest.fixture(params=["dense", "tiled"])
def backend(request, monkeypatch):
    monkeypatch.setattr(_engine, "_AUTO_TILED", request.param == "tiled")
    return request.param

"""Shared test set-up: no hub access (this machine and CI are offline), quiet tokenizers, and the
shared data (``../shared/data``) visible only to tests marked ``shared_data``.

A fresh clone has no ``../shared`` beside it, so a test that needs the data must say so with
``@pytest.mark.shared_data`` (it is then skipped there, with the reason). Every other test runs with
the data hidden (``ASYMRL_DATA_DIR`` set empty, inherited by child processes), so one that silently
depends on the data fails here and in CI too, not only on a user's fresh clone.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
# `make test` runs two pytest workers (pytest-xdist) on the 2-core machine: one thread each, not two
# (set before torch is imported). Distributed tests launch with `--main_process_port 0` (a free port
# each), so two workers' launches never meet on accelerate's default port.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared data, absent here ({SHARED_DATA}: a fresh clone)")
    for item in items:
        if item.get_closest_marker("shared_data"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def hide_shared_data_unless_marked(request, monkeypatch):
    if request.node.get_closest_marker("shared_data") is None:
        monkeypatch.setenv("ASYMRL_DATA_DIR", "")

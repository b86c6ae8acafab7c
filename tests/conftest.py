"""Shared test set-up: no hub access (this machine and CI are offline), quiet tokenizers, the shared
data (``../shared/data``) visible only to tests marked ``shared_data``, and every registry restored
after each test.

A fresh clone has no ``../shared`` beside it, so a test that needs the data must say so with
``@pytest.mark.shared_data`` (it is then skipped there, with the reason). The data is hidden for the
whole session (``ASYMRL_DATA_DIR`` set empty when this file is imported, before any fixture runs and
any child process starts, whatever the shell exports), so one that silently depends on it fails here
and in CI too, not only on a user's fresh clone; module-scoped fixtures and the processes they launch
see it hidden as well. A test marked ``shared_data`` gets the folder named explicitly
(``ASYMRL_DATA_DIR=../shared/data``) for its own duration.

Registries (``asymrl.registry.Registry``: estimators, policy losses, rewards, rollout engines,
diagnostics, tasks, ...) and accelerate's tracker registry are module-level state: the autouse
``restore_registries`` fixture snapshots them before each test and restores them after, so a test may
register what it likes and no other test sees it, whether it passes or fails.
"""

import importlib
import os

import pytest
from helpers import SHARED_DATA, live_registries, registry_modules

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
# `make test` runs two pytest workers (pytest-xdist) on the 2-core machine: one thread each, not two
# (set before torch is imported). Distributed tests launch with `--main_process_port 0` (a free port
# each), so two workers' launches never meet on accelerate's default port.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

# Hidden for the whole session (inherited by every child process); see the module docstring.
os.environ["ASYMRL_DATA_DIR"] = ""

# Imported now, so that every registry exists (with its built-in entries) before the first snapshot.
for _module in registry_modules():
    importlib.import_module(_module)


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared data, absent here ({SHARED_DATA}: a fresh clone)")
    for item in items:
        if item.get_closest_marker("shared_data"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def show_shared_data_when_marked(request, monkeypatch):
    if request.node.get_closest_marker("shared_data") is not None:
        monkeypatch.setenv("ASYMRL_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(autouse=True)
def restore_registries():
    """Every registry's entries, and accelerate's tracker classes, as they were before the test."""
    from accelerate import tracking

    registries = live_registries()
    # Registry keeps its entries in ``_entries``; restored in place, so every reference to the
    # registry (bound methods such as ``available``) sees the restored entries.
    saved = [(registry, dict(registry._entries)) for registry in registries]
    trackers = dict(tracking.LOGGER_TYPE_TO_CLASS)
    yield
    for registry, entries in saved:
        registry._entries.clear()
        registry._entries.update(entries)
    tracking.LOGGER_TYPE_TO_CLASS.clear()
    tracking.LOGGER_TYPE_TO_CLASS.update(trackers)

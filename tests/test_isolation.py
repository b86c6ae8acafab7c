"""The test set-up itself (tests/conftest.py): the shared data hidden from everything not marked
``shared_data``, module-scoped fixtures and their child processes included, and no registration
surviving the test that made it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import SHARED_DATA, live_registries

CHILD = "import json; from asymrl.data import default_local_dir; print(json.dumps(str(default_local_dir())))"


@pytest.fixture(scope="module")
def seen_by_a_module_fixture() -> tuple[str | None, str]:
    """What a module-scoped fixture, and a process it starts, see of the data folder: module fixtures
    run before any function-scoped (autouse) fixture, as test_trainer.py's run fixture does."""
    child = subprocess.run([sys.executable, "-c", CHILD], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    return os.environ.get("ASYMRL_DATA_DIR"), json.loads(child.stdout.strip().splitlines()[-1])


def test_module_fixtures_and_their_processes_do_not_see_the_shared_data(seen_by_a_module_fixture):
    variable, child_folder = seen_by_a_module_fixture
    assert variable == ""  # "no folder", whatever the shell running pytest exports
    assert child_folder == "None"


def test_an_unmarked_test_does_not_see_the_shared_data():
    from asymrl.data import default_local_dir

    assert os.environ.get("ASYMRL_DATA_DIR") == "" and default_local_dir() is None


@pytest.mark.shared_data
def test_a_marked_test_is_given_the_shared_data():
    from asymrl.data import default_local_dir

    assert os.environ["ASYMRL_DATA_DIR"] == str(SHARED_DATA)
    assert default_local_dir() == SHARED_DATA


# -- registrations do not outlive their test: the first test registers, the second (run after it, in
# file order) finds nothing of it -----------------------------------------------------------------

LEAKED = "isolation_probe"


def test_registers_into_every_registry_and_cleans_up_nothing():
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker, register_tracker_class

    from asymrl import metrics

    registries = live_registries()
    kinds = {registry.kind for registry in registries}
    assert {"advantage estimator", "policy loss", "reward", "rollout engine", "diagnostic"} <= kinds
    metrics.diagnostic(LEAKED + "_diagnostic")(lambda rollouts, step, config: {})  # as a user's module would
    for registry in registries:
        registry._entries[LEAKED] = metrics.DIAGNOSTICS.get(LEAKED + "_diagnostic")  # past any check: it only has to be held
        assert LEAKED in registry

    class Probe(GeneralTracker):
        name = LEAKED
        requires_logging_directory = False

    register_tracker_class(Probe)
    assert LOGGER_TYPE_TO_CLASS[LEAKED] is Probe


def test_nothing_registered_by_the_previous_test_is_left():
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    from asymrl import advantages, metrics

    assert [registry.kind for registry in live_registries() if LEAKED in registry] == []
    assert LEAKED + "_diagnostic" not in metrics.DIAGNOSTICS
    assert LEAKED not in LOGGER_TYPE_TO_CLASS
    # ...and the built-in entries are all still there.
    assert {"grpo", "asymgrpo"} <= set(advantages.available()) and "group_outcomes" in metrics.DIAGNOSTICS
    assert "tensorboard" in LOGGER_TYPE_TO_CLASS

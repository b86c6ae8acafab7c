"""``WorkerPool``: every reward call runs in a killable worker process with a hard time limit.

A call is a function *reference* (``"module:qualname"``, imported by the worker) with its
arguments, so nothing but plain data crosses the pipe. Each worker is a ``spawn``-ed process (safe
next to torch threads, no fork of a CUDA context) with an address-space cap. A call that overruns
``timeout_s`` gets its worker killed and respawned and is counted in ``num_timeouts``; a worker
that dies in a call (the memory cap) is respawned too and counted in ``num_crashes``. No signal
handlers are used, so it works from any thread.

A worker says "ready" once it has started and made its warm-up call (imports are not charged to
the first case's time limit). One that exits before that, or stays silent for
``STARTUP_TIMEOUT_S``, raises ``WorkerStartError``: ``spawn`` re-runs the main script in every
worker, so a script without an ``if __name__ == "__main__":`` guard (or one read from standard
input, which cannot be re-run) kills its workers, and scoring on would turn every case into a
silent 0.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

from asymrl.registry import import_reference

# Generous: a worker imports the main script, the reward's module and SymPy on a possibly busy machine.
STARTUP_TIMEOUT_S = 120.0

# A call: (function reference "module:qualname", positional arguments, keyword arguments).
Call = tuple[str, tuple, dict]


class WorkerStartError(RuntimeError):
    """Reward workers could not start: no case was scored."""


@dataclass
class Outcome:
    """What one call came to: ``value`` when ``status`` is "ok", ``error`` (text) otherwise."""

    status: Literal["ok", "error", "timeout", "crash"]
    value: Any = None
    error: str = ""


def _worker_main(connection: Connection, memory_mb: int, warm_up: Call | None) -> None:
    import logging

    # The worker *is* the time limit: math-verify's warnings about its own disabled timeouts are noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    try:
        if warm_up is not None:
            reference, args, kwargs = warm_up
            import_reference(reference)(*args, **kwargs)
    except BaseException:
        connection.send(("failed", traceback.format_exc()))
        return
    connection.send(("ready", None))
    functions: dict[str, Any] = {}
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        reference, args, kwargs = message
        try:
            if reference not in functions:
                functions[reference] = import_reference(reference)
            reply = ("ok", functions[reference](*args, **kwargs))
        except BaseException as error:  # the call's failure (MemoryError included), never the worker's
            reply = ("error", f"{type(error).__name__}: {error}")
        try:
            connection.send(reply)
        except Exception as error:  # a return value that cannot be pickled
            connection.send(("error", f"returned a {type(reply[1]).__name__}, which cannot be sent back ({error})"))


class _Worker:
    def __init__(self, context, memory_mb: int, warm_up: Call | None):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, memory_mb, warm_up), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.case: int | None = None
        self.deadline = time.monotonic() + STARTUP_TIMEOUT_S  # of its start-up until ready, then of its case

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


def _start_advice() -> str:
    """What to do when workers cannot start, for this main module."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    advice = ('Reward workers are started with multiprocessing\'s "spawn" method, which re-runs your main script '
              'in each worker: put its top-level code under `if __name__ == "__main__":`')
    if main_file is not None and not os.path.isfile(main_file):
        advice += f" and save it to a file (the main module {main_file!r} is not one, e.g. code read by `python -`)"
    return advice + " (the worker's own error, if any, is printed above)."


class WorkerPool:
    """Runs calls in up to ``num_workers`` processes; ``run(calls)`` returns one ``Outcome`` per call, in
    order. Workers start on first use and are reused until ``close()``."""

    def __init__(self, num_workers: int, timeout_s: float, memory_mb: int, warm_up: Call | None = None):
        self.num_workers = num_workers
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.warm_up = warm_up
        self.num_timeouts = 0
        self.num_crashes = 0
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def run(self, calls: list[Call]) -> list[Outcome]:
        while len(self._workers) < min(self.num_workers, len(calls)):
            self._workers.append(self._spawn())
        outcomes: list[Outcome | None] = [None] * len(calls)
        queue = list(reversed(range(len(calls))))
        while queue or any(worker.case is not None for worker in self._workers):
            for worker in self._workers:
                if worker.ready and worker.case is None and queue:
                    worker.case, worker.deadline = queue.pop(), time.monotonic() + self.timeout_s
                    worker.connection.send(calls[worker.case])
            waiting = {w.connection: w for w in self._workers if not w.ready or w.case is not None}
            timeout = max(0.0, min(w.deadline for w in waiting.values()) - time.monotonic())
            for connection in wait(list(waiting), timeout=timeout):
                worker = waiting[connection]
                try:
                    status, payload = connection.recv()
                except (EOFError, OSError):  # the worker died
                    if not worker.ready:
                        worker.process.join(timeout=5)
                        self._fail_to_start(f"a worker exited (code {worker.process.exitcode}) before it was ready", _start_advice())
                    outcomes[worker.case] = Outcome("crash", error=f"its worker died (exit code {worker.process.exitcode}; "
                                                                   f"memory cap {self.memory_mb} MB)")
                    self.num_crashes += 1
                    self._replace(worker)
                    continue
                if not worker.ready:
                    if status != "ready":
                        self._fail_to_start(f"a worker failed its warm-up call {self.warm_up[0]}:\n{payload}",
                                            "A reward must be importable in a fresh process (reward.memory_mb caps its memory).")
                    worker.ready = True
                    continue
                outcomes[worker.case] = Outcome(status, payload if status == "ok" else None, "" if status == "ok" else payload)
                worker.case = None
            now = time.monotonic()
            for worker in list(self._workers):
                if now < worker.deadline:
                    continue
                if not worker.ready:
                    self._fail_to_start(f"a worker did not say it was ready within {STARTUP_TIMEOUT_S:.0f} s", _start_advice())
                if worker.case is not None:
                    outcomes[worker.case] = Outcome("timeout", error=f"killed after {self.timeout_s} s")
                    self.num_timeouts += 1
                    self._replace(worker)
        return outcomes

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.memory_mb, self.warm_up)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = self._spawn()

    def _fail_to_start(self, what: str, advice: str) -> None:
        self.close()
        raise WorkerStartError(f"reward workers could not start: {what}. {advice} No case was scored.")

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.connection.send(None)
            except OSError:
                pass
            worker.kill()
        self._workers = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class PooledReward(ABC):
    """A reward scored through a ``WorkerPool``: what the trainer, ``evaluate`` and the toy report hold
    (``asymrl.reward.build_reward`` makes one from the config).

    ``score(responses, examples)`` returns one float per response, in order. ``counts`` says how many
    cases since construction were killed for overrunning the time limit (``timeouts``), raised
    (``errors``) or lost with their worker (``crashes``); each of those scored 0.
    """

    def __init__(self, name: str, pool: WorkerPool):
        self.name = name
        self.pool = pool
        self.num_errors = 0

    @abstractmethod
    def score(self, responses: list[str], examples: list[dict]) -> list[float]:
        """One reward per response; ``examples[i]`` is the problem (id, problem, answer, ...) of ``responses[i]``."""

    @property
    def num_timeouts(self) -> int:
        return self.pool.num_timeouts

    @property
    def num_crashes(self) -> int:
        return self.pool.num_crashes

    @property
    def counts(self) -> dict[str, int]:
        return {"timeouts": self.num_timeouts, "errors": self.num_errors, "crashes": self.num_crashes}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

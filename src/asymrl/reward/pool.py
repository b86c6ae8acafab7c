"""``MathVerifier``: batch scoring in killable worker processes with a hard time limit per case.

The parent extracts answers and decides most cases itself (``fast_verdict``); only cases that need
SymPy go to workers. Each worker is a ``spawn``-ed process (safe next to torch threads, no fork of a
CUDA context) with an address-space cap; a case that overruns ``timeout_s`` gets its worker killed
and respawned, scores 0, and is counted in ``num_timeouts``. No signal handlers are used, so it
works from any thread. Parsed SymPy objects never leave a worker: only booleans come back.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection, wait

from asymrl.reward.equivalence import fast_verdict, symbolic_equal
from asymrl.reward.extract import HEDGE, extract_answer


def _worker_main(connection: Connection, memory_mb: int) -> None:
    import logging

    # The worker *is* the time limit: math-verify's warnings about its own disabled timeouts are noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        predicted, reference = message
        try:
            verdict = symbolic_equal(predicted, reference)
        except BaseException:  # a SymPy failure (or MemoryError) is a wrong answer, not a crash
            verdict = False
        connection.send(verdict)


class _Worker:
    def __init__(self, context, memory_mb: int):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.case: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class MathVerifier:
    """Scores responses against reference answers: 1.0 if equivalent, else 0.0.

    ``score_batch`` returns scores in input order; ``num_timeouts`` counts cases killed for
    overrunning ``timeout_s`` since construction. Use as a context manager or call ``close()``.
    """

    def __init__(self, num_workers: int | None = None, timeout_s: float = 2.0, memory_mb: int = 2048):
        self.num_workers = num_workers or max(1, min(4, (os.cpu_count() or 2)))
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.num_timeouts = 0
        self.num_symbolic = 0
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def __enter__(self) -> "MathVerifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score_batch(self, responses: list[str], references: list[str]) -> list[float]:
        if len(responses) != len(references):
            raise ValueError(f"{len(responses)} responses but {len(references)} references")
        scores = [0.0] * len(responses)
        symbolic: list[tuple[int, str, str]] = []
        for index, (response, reference) in enumerate(zip(responses, references)):
            answer = extract_answer(response, or_is_list=bool(HEDGE.search(reference)))
            if answer is None:
                continue
            verdict = fast_verdict(answer, reference)
            if verdict is None:
                symbolic.append((index, answer, reference))
            else:
                scores[index] = float(verdict)
        if symbolic:
            self.num_symbolic += len(symbolic)
            for index, verdict in self._run_symbolic(symbolic).items():
                scores[index] = float(verdict)
        return scores

    def _run_symbolic(self, cases: list[tuple[int, str, str]]) -> dict[int, bool]:
        while len(self._workers) < min(self.num_workers, len(cases)):
            self._workers.append(_Worker(self._context, self.memory_mb))
        results: dict[int, bool] = {}
        queue = list(reversed(cases))
        busy: dict[Connection, _Worker] = {}
        while queue or busy:
            for worker in self._workers:
                if worker.case is None and queue:
                    index, predicted, reference = queue.pop()
                    worker.case, worker.deadline = index, time.monotonic() + self.timeout_s
                    worker.connection.send((predicted, reference))
                    busy[worker.connection] = worker
            timeout = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            for connection in wait(list(busy), timeout=timeout):
                worker = busy.pop(connection)
                try:
                    results[worker.case] = bool(connection.recv())
                except (EOFError, OSError):  # the worker died (memory cap): a wrong answer
                    results[worker.case] = False
                    self._replace(worker)
                    continue
                worker.case = None
            now = time.monotonic()
            for connection, worker in list(busy.items()):
                if now >= worker.deadline:
                    results[worker.case] = False
                    self.num_timeouts += 1
                    del busy[connection]
                    self._replace(worker)
        return results

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = _Worker(self._context, self.memory_mb)

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

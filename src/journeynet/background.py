"""Run one function in a second process while this one works, and collect its result.

``train.py`` is mostly one thread (``torch_threads: 1``: small recurrent batches run
fastest on one), so on a machine with two or more cores the second one sat idle while
the net trained. The work that does not need the trained net (the summary baselines, the
funnel engine's fits and the response curves: :mod:`journeynet.net_free`) runs there instead.

The process is spawned (a fork of a process holding torch threads can deadlock). Its log
records come back through a queue to this process's handlers, so they land in the run's
log and console as if logged here; it draws no progress bars (the main process's bars
own the terminal). An exception raised there is raised again by :meth:`Background.result`,
so a bad input still ends as one line and exit 2. Leaving the ``with`` block ends the
process if it is still running (the main work failed, or its result was never asked for).

Quickstart::

    with Background(sum, [1, 2, 3]) as job:
        ...                      # the main work
        total = job.result()     # 6, computed in the other process
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import threading
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_UNSET = object()


def _child(conn: Any, inbox: Any, queue: Any, level: int, threads: int) -> None:
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)
    import torch
    from threadpoolctl import threadpool_limits

    from journeynet.progress import disable_progress

    disable_progress()
    torch.set_num_threads(threads)
    try:
        fn, args = inbox.recv()
        with threadpool_limits(threads):  # sklearn's OpenMP would otherwise take the main process's core
            value = fn(*args)
        conn.send(("ok", value))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the main process
        text = traceback.format_exc()
        try:
            conn.send(("error", err, text))
        except Exception:  # an exception that does not pickle: its text still does
            conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}"), text))
    finally:
        conn.close()


def _send(conn: Any, payload: Any) -> None:
    try:
        conn.send(payload)
    except (BrokenPipeError, EOFError, OSError):  # the child died first: result() reports it
        pass
    finally:
        conn.close()


class Background:
    """``fn(*args)`` in a spawned process.

    Parameters
    ----------
    fn : Callable
        A module-level function (it is pickled by reference); its arguments and result
        must pickle.
    *args
        Its arguments.
    threads : int
        torch and BLAS/OpenMP threads of the second process.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, threads: int = 1) -> None:
        self.fn = fn
        self._value: Any = _UNSET
        self._proc: Any = None
        self._listener: logging.handlers.QueueListener | None = None
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue()
        root = logging.getLogger()
        self._listener = logging.handlers.QueueListener(self._queue, *root.handlers, respect_handler_level=True)
        self._listener.start()
        self._conn, child_conn = ctx.Pipe(duplex=False)
        inbox, outbox = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(child_conn, inbox, self._queue, root.getEffectiveLevel(),
                                                      threads), name=f"journeynet-{fn.__name__}")
        self._proc.start()
        child_conn.close()  # only the child writes: EOF here when it dies
        inbox.close()
        # The arguments go over a pipe from a thread: a large pickle would otherwise hold this
        # process until the child has imported torch and read it (seconds of the main work).
        self._sender = threading.Thread(target=_send, args=(outbox, (fn, args)), daemon=True)
        self._sender.start()
        log.info("%s runs in a second process (pid %d) while this one trains", fn.__name__, self._proc.pid)

    def result(self) -> Any:
        """The function's value; its exception raised again here, or an error if the process died."""
        if self._value is not _UNSET:
            return self._value
        try:
            message = self._conn.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError(f"the second process running {self.fn.__name__} died (exit code "
                               f"{self._proc.exitcode}); run with background=false to run it in this one") from None
        finally:
            self._finish()
        if message[0] == "error":
            err, text = message[1], message[2]
            log.debug("in the second process:\n%s", text)
            raise err
        self._value = message[1]
        return self._value

    def _finish(self) -> None:
        if self._proc is not None:
            self._proc.join(timeout=30)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
            self._proc = None
        if self._listener is not None:
            self._listener.stop()  # drains the records already queued
            self._listener = None

    def close(self) -> None:
        """End the process if it still runs (its result is no longer wanted)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
        self._finish()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The user's stop (Ctrl-C, SIGTERM), remembered where no library can swallow it.

A terminal's Ctrl-C and a `kill -- -PGID` reach the driver and every Ray process at once. Which
of them acts first is a race: Ray Tune's own SIGINT handler ends its loop, the trials' actors
die of the SIGTERM, and the trials may come back TERMINATED or ERROR although training never
ended them. So the driver does not read the user's stop off the trials' statuses: every signal
is recorded here the moment it arrives, and a stage whose run saw one is never marked finished
(`stop_if_requested`). Three handlers can own SIGINT during a run (ours, Ray's SIGTERM handler
installed by ray.init, Tune's while a Tuner fits); `SignalWatch` wraps Tune's so that its
graceful save still happens and the stop is recorded too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ray.tune import Callback

_received: list[int] = []


class Interrupted(Exception):
    """The user stopped the run (Ctrl-C, SIGTERM); the stage stays unfinished for resume."""


def note(signum: int) -> None:
    _received.append(signum)


def requested() -> bool:
    return bool(_received)


def reset() -> None:
    """Forget earlier stops (tests that call main() twice in one process)."""
    _received.clear()


def stop_if_requested(where: str) -> None:
    if _received:
        raise Interrupted(where)


def _stop(signum: int, frame: Any) -> None:
    note(signum)
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM stop the driver as a KeyboardInterrupt, recorded first. Called at
    start-up and again after ray.init (whose own SIGTERM handler is a bare sys.exit(15))."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (and only it receives signals)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop_via_sigint)


@contextlib.contextmanager
def handled(restore: bool = True) -> Iterator[None]:
    """One command's span: earlier stops forgotten, our handlers installed, and the caller's
    put back afterwards (tests call main() in their own process) when `restore`."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    restore = restore and threading.current_thread() is threading.main_thread()
    reset()
    install()
    try:
        yield
    finally:
        for sig, handler in before.items():
            if restore and handler is not None:
                signal.signal(sig, handler)


def _stop_via_sigint(signum: int, frame: Any) -> None:
    """SIGTERM goes the way of Ctrl-C: while a Tuner fits, its handler saves the experiment."""
    note(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def tune_fit(where: str) -> Iterator[None]:
    """Around a Tuner's fit: our handlers come back afterwards, also when the fit returned
    normally (tune.run leaves its own SIGINT handler installed then: a Ctrl-C between stages
    would only set the event of a finished fit, and the next stage would train on)."""
    stop_if_requested(where)
    try:
        yield
    finally:
        install()
    stop_if_requested(where)


class SignalWatch(Callback):
    """Records a stop that arrives while Tune's SIGINT handler is installed (tune.run puts it
    in place before its loop and the first step; Tune calls it once and then restores ours)."""

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        current = signal.getsignal(signal.SIGINT)
        if current in (_stop, None) or getattr(current, "archsweep_watch", False):
            return
        if not callable(current):
            return

        def watched(signum: int, frame: Any) -> None:
            note(signum)
            current(signum, frame)

        watched.archsweep_watch = True  # type: ignore[attr-defined]
        signal.signal(signal.SIGINT, watched)

    def __getstate__(self) -> dict[str, Any]:
        return {}

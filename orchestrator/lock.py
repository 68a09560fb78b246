"""One run at a time per run directory.

Two runs of one study into the same storage would both train everything and overwrite each
other's study.json. The lock file holds the owner's pid, host and start time; a lock whose
process is gone (same host) is stale and taken over, so a SIGKILLed run never blocks its resume.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from orchestrator.study import StudyError
from trainables.run_dir import LOCK_FILE, process_alive
from trainables.storage import Location

# An empty lock file older than this was torn by a kill (its owner writes it within ms).
TORN_AFTER_S = 5.0


class RunLock:
    """`with RunLock(run_dir, location):` holds the run directory for this process.

    For remote storage the lock is also an object in the bucket, so a run from another machine
    is refused too. Object stores have no create-if-absent, so two runs starting within the
    same second could both take it: the remote lock guards against a forgotten run, not a race.
    """

    def __init__(self, run_dir: Path, location: Location | None = None) -> None:
        self.path = run_dir / LOCK_FILE
        self.remote = location.join(LOCK_FILE) if location and location.remote else None
        self.held = False

    def __enter__(self) -> RunLock:
        tries = 0
        while tries < 3:  # a retry follows removing a stale lock, or the folder moving away
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # the folder it found was renamed (another --fresh) before
                tries += 1  # mkdir(exist_ok=True) could check it: try again
                continue
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._refuse_or_clear():
                    tries += 1
                else:  # its owner is writing it this moment: read it again
                    time.sleep(0.05)
                continue
            except FileNotFoundError:  # another --fresh moved the folder just now
                tries += 1
                continue
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f)
            self.held = True
            if self.remote is not None:
                self._take_remote(owner)
            return self
        raise StudyError(f"could not take the lock {self.path}; remove it if no run is active")

    def _take_remote(self, owner: dict) -> None:
        if self.remote is None:
            return
        if self.remote.is_file():
            try:
                self._refuse_or_clear(self.remote.read_text(), self.remote.delete)
            except StudyError:  # another machine's run holds it: give back only our local lock
                self.path.unlink(missing_ok=True)
                self.held = False
                raise
        self.remote.write_bytes(json.dumps(owner).encode())

    def _refuse_or_clear(self, text: str | None = None, clear: Any = None) -> bool:
        """Clear a stale lock (True: try to take it again); False while a young lock file is
        still being written; else refuse, naming the run that holds it."""
        clear = clear or (lambda: self.path.unlink(missing_ok=True))
        try:
            owner = json.loads(self.path.read_text() if text is None else text)
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            owner, pid, host = {}, -1, ""
        if host == socket.gethostname() and not process_alive(pid):
            clear()  # stale: its process is gone
            return True
        if not owner:
            # The owner creates the file, then writes it: an empty one is either being written
            # now (two --fresh at once; clearing it let both take the lock, seen in the suite)
            # or torn by a kill between the two steps, and then stale once it is old.
            if text is None and self._age() < TORN_AFTER_S:
                return False
            clear()
            return True
        raise StudyError(
            f"another run (pid {pid} on {host}, since {owner.get('since')}) is using "
            f"{self.path.parent}; wait for it to finish, or use another --name. If that run is "
            f"gone (its machine died), delete {self.path}"
        )

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:  # gone already: nothing to wait for
            return TORN_AFTER_S

    def moved_to(self, path: Path) -> None:
        """The folder was renamed with the lock in it (--fresh): release it at its new place."""
        self.path = path

    def _ours(self) -> bool:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        return owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()

    def __exit__(self, *exc: object) -> None:
        if self.held:
            if self._ours():  # never another run's lock that took this path since
                self.path.unlink(missing_ok=True)
            if self.remote is not None and self.remote.is_file():
                self.remote.delete()
            self.held = False

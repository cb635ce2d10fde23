"""The proxy's side of the translator: start it, restart it when it dies, hear its commits.

The translator's stderr is relayed into the proxy's log; each commit it reports wakes the
sinks and moves `position`, which the proxy waits on when it stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger("xapitap")

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # where `import xapitap` finds it
_RESTART_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
# Deaths by a signal (a segfault, an OOM kill) with no progress in between, before the
# translator goes one record at a time, and then before it passes over the record it dies on.
_CAREFUL_AFTER = 2
_SKIP_AFTER = 3
_LEVELS = {name: getattr(logging, name) for name in ("DEBUG", "INFO", "WARNING", "ERROR")}


class TranslatorProcess:
    def __init__(self, store: Path, position: int, on_commit: Callable[[int], None]) -> None:
        self._store = store
        self._on_commit = on_commit
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._changed = threading.Condition()
        self.position = position  # the next journal seq to translate, as last reported
        self._watcher = threading.Thread(target=self._watch, name="xapitap-translator", daemon=True)
        self._started = threading.Event()

    def start(self) -> None:
        self._watcher.start()
        self._started.wait(10)

    def _spawn(self, extra: list[str]) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "xapitap.translator", "--store", str(self._store), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the proxy is the proxy's to pass on
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        os.set_blocking(proc.stdin.fileno(), False)  # a stopped translator never blocks us
        threading.Thread(target=self._relay, args=(proc.stderr,), daemon=True).start()
        threading.Thread(target=self._commits, args=(proc.stdout,), daemon=True).start()
        log.info("xapitap: translator started (pid %d)", proc.pid)
        return proc

    def _watch(self) -> None:
        """Run the translator until stopped, restarting it (with backoff) when it dies.

        A translator killed by a signal again and again at the same place (a record that
        crashes it where no exception handler can see) goes one record at a time, then passes
        over the record it dies on, counting it: capture never stalls behind one record."""
        failures = stuck = 0
        while not self._stopping:
            started, position = time.monotonic(), self.position
            extra = []
            if stuck >= _CAREFUL_AFTER:
                extra = ["--batch", "1"]
            if stuck >= _SKIP_AFTER:
                extra += ["--skip", str(position)]
            try:
                self._proc = self._spawn(extra)
            except OSError as e:
                self._started.set()
                log.error("xapitap: cannot start the translator: %s; retrying in 10 s", e)
                time.sleep(10)
                continue
            self._started.set()
            code = self._proc.wait()
            if self._stopping:
                return
            if time.monotonic() - started > 60:
                failures = 0
            stuck = stuck + 1 if code < 0 and self.position == position else 0
            delay = _RESTART_DELAYS[min(failures, len(_RESTART_DELAYS) - 1)]
            failures += 1
            log.error(
                "xapitap: the translator exited (%s); restarting it in %.1f s; nothing "
                "journaled is lost",
                code,
                delay,
            )
            time.sleep(delay)

    def nudge(self) -> None:
        """Tell the translator that more is journaled (never waits)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(b"\n")
            proc.stdin.flush()
        except (BlockingIOError, BrokenPipeError, ValueError, OSError):
            pass  # it reads the journal on its own too

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until everything before `seq` is translated; False at the timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.position < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def stop(self, timeout: float = 30) -> None:
        """Stop it after the batch under way (SIGTERM; SIGKILL past the timeout: what it had
        not committed is translated again by the next one)."""
        self._stopping = True
        proc = self._proc
        if proc is None:
            return
        try:
            proc.terminate()
            os.kill(proc.pid, signal.SIGCONT)  #: a stopped process cannot act on SIGTERM
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            log.error("xapitap: the translator did not stop within %.0f s; killed", timeout)
            proc.kill()
            proc.wait()
        self._watcher.join(5)

    def _commits(self, stream: IO[bytes]) -> None:
        for line in stream:
            parts = line.split()
            if len(parts) != 3 or parts[0] != b"committed":
                continue
            with self._changed:
                self.position = int(parts[1])
                self._changed.notify_all()
            if int(parts[2]):
                self._on_commit(self.position)

    @staticmethod
    def _relay(stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            level, _, text = line.partition(" ")
            if level in _LEVELS:
                log.log(_LEVELS[level], "xapitap translator: %s", text)
            elif line:
                log.error("xapitap translator: %s", line)

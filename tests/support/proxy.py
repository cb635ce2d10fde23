"""Run a real `mitmdump` with the xapitap addon, as a user would, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDON = REPO_ROOT / "addons" / "xapitap.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
_LISTENING = re.compile(r"proxy (?:\([\w ]+\) |to \S+ )?listening at .*:(\d+)\.")
# What the addon logs once its store and threads are up (after mitmdump listens).
_ADDON_READY = "xapitap: storing statements in"
_DASHBOARD = re.compile(r"xapitap: dashboard at (http://\S+)")


class Mitmdump:
    """mitmdump on 127.0.0.1 and a free port, with a fresh CA in `confdir`."""

    def __init__(
        self,
        workdir: Path,
        *args: str,
        addon: bool = True,
        set_store: bool = True,
        program: Path = MITMDUMP,
    ) -> None:
        """`set_store=False` leaves xapi_store to a config.yaml or the default; `program` may
        be mitmweb."""
        self.confdir = workdir / "confdir"
        self.confdir.mkdir(parents=True, exist_ok=True)
        self.store = workdir / "xapitap.sqlite3"
        self.args = [
            str(program),
            "--listen-host",
            "127.0.0.1",
            "-p",
            "0",
            "--set",
            f"confdir={self.confdir}",
            "--set",
            "connection_strategy=lazy",
        ]
        if addon:
            self.args += ["-s", str(ADDON)]
        if addon and not any(a.startswith("xapi_dashboard=") for a in args):
            # Any free port: tests run side by side, and beside a user's own proxy. (Not set
            # twice: mitmproxy 11 hangs on a script's option given two values.)
            self.args += ["--set", "xapi_dashboard=127.0.0.1:0"]
        if addon and set_store:
            self.args += ["--set", f"xapi_store={self.store}"]
        self.args += list(args)
        self.addon = addon
        self.port = 0
        self.lines: list[str] = []
        self.returncode: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def proxies(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.port}"
        return {"http": url, "https": url}

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def dashboard_url(self) -> str:
        """The dashboard's address with its token, as the proxy printed it."""
        found = _DASHBOARD.search(self.output)
        assert found, f"the proxy printed no dashboard address:\n{self.output}"
        return found.group(1)

    def start(self, timeout: float = 30) -> None:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self._proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        listening = threading.Event()
        threading.Thread(target=self._read, args=(listening,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not listening.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                if self._proc.poll() is None:  # never leave a half-started proxy behind
                    self._proc.kill()
                self._proc.wait(5)
                self.returncode = self._proc.returncode
                time.sleep(0.2)  # let the reader thread collect the last lines
                raise RuntimeError(
                    f"mitmdump did not start (exit {self.returncode}):\n{self.output}"
                )

    def _read(self, listening: threading.Event) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = _LISTENING.search(line)
            if m and not self.port:
                self.port = int(m.group(1))
            ready = not self.addon or any(_ADDON_READY in seen for seen in self.lines)
            if self.port and ready:
                listening.set()

    def run_to_exit(self, timeout: float = 30) -> int:
        """Start, expecting mitmdump to exit by itself (e.g. on a bad option)."""
        try:
            self.start(timeout)
        except RuntimeError:
            assert self.returncode is not None
            return self.returncode
        self.stop()
        raise AssertionError(f"mitmdump kept running:\n{self.output}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a user's Ctrl-C or a service manager would, and wait for exit."""
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self.returncode = self._proc.returncode
        time.sleep(0.1)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, as in a crash or an OOM kill."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(10)
        self.returncode = self._proc.returncode

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.stop()

"""Run a real Ralph LRS (ralph-malph 5.1.0) and Ralph's xAPI validator for the tests.

Ralph lives in its own virtualenv (created by `make test`); this module only talks to
it through subprocesses and HTTP, so pytest's interpreter never imports `ralph`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import NoReturn
from typing import Self
from urllib.parse import urljoin

import requests

SUPPORT_DIR = Path(__file__).resolve().parent
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO_ROOT / ".venv-ralph"
LAUNCHER = SUPPORT_DIR / "ralph_launcher.py"
VALIDATOR = SUPPORT_DIR / "ralph_validate.py"

HOST = "127.0.0.1"
XAPI_VERSION = "1.0.3"
XAPI_HEADERS = {"X-Experience-API-Version": XAPI_VERSION}
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 30.0
MAX_PAGES = 1000

# Variables that must not leak from pytest's environment into Ralph's interpreter.
_SCRUBBED_PREFIXES = ("RALPH_",)
_SCRUBBED_NAMES = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}


def ralph_venv() -> Path:
    """Ralph's virtualenv: $XAPITAP_RALPH_VENV, else <repo>/.venv-ralph."""
    override = os.environ.get("XAPITAP_RALPH_VENV")
    return Path(override) if override else DEFAULT_VENV


def ralph_python() -> Path:
    """Interpreter of Ralph's virtualenv; raises (never skips) when it is missing."""
    venv = ralph_venv()
    # Not resolved on purpose: a venv's bin/python is a symlink to the base interpreter.
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / "bin" / "ralph").exists():
        raise RuntimeError(
            f"Ralph's virtualenv is missing or incomplete at {venv} "
            "(expected bin/python and bin/ralph from ralph-malph[cli,lrs]==5.1.0). "
            "Run `make test`, which creates it, or point XAPITAP_RALPH_VENV at one."
        )
    return python


def ralph_executable() -> Path:
    """The `ralph` CLI installed next to Ralph's interpreter."""
    return ralph_python().parent / "ralph"


def ralph_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of os.environ without stray Ralph/Python settings, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _SCRUBBED_NAMES and not name.startswith(_SCRUBBED_PREFIXES)
    }
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "<no log>"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class RalphLRS:
    """A real Ralph LRS on 127.0.0.1 with the fs backend in a private temp dir.

    Use as a context manager. `stop()` and `start()` restart the server on the same
    data dir and port, e.g. to simulate an LRS outage.
    """

    def __init__(
        self,
        username: str = "xapitap",
        password: str = "xapitap-test-password",
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.username = username
        self.password = password
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.session = requests.Session()
        # Loopback only: never route through proxies or CA settings from the env.
        self.session.trust_env = False
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server (creating the temp dir and credentials on first use)."""
        if self.running:
            return
        auth: subprocess.Popen[str] | None = None
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="xapitap-ralph-"))
            auth = self._spawn_auth()
        self._spawn_server()
        # Ralph reads the credentials file on the first authenticated request only, so
        # `ralph auth` (~1.3 s) overlaps the server boot; wait for it before polling.
        if auth is not None:
            self._finish_auth(auth)
        self._wait_until_ready()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); keep its data."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the server and delete its temp dir (data, credentials, logs)."""
        self.stop()
        self.session.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- locations -------------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("RalphLRS has not been started")
        return self._tmp

    @property
    def data_dir(self) -> Path:
        return self.tmp_dir / "data"

    @property
    def auth_file(self) -> Path:
        return self.tmp_dir / "auth.json"

    @property
    def log_path(self) -> Path:
        return self.tmp_dir / "ralph.log"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def url(self) -> str:
        """The xAPI endpoint base, e.g. http://127.0.0.1:PORT/xAPI/."""
        return urljoin(self.base_url, "xAPI/")

    @property
    def statements_url(self) -> str:
        return urljoin(self.url, "statements")

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    # --- xAPI client -----------------------------------------------------------------

    def post(self, statements: dict[str, Any] | list[dict[str, Any]]) -> requests.Response:
        """POST one statement or a list; returns the raw response (no raise)."""
        return self.session.post(
            self.statements_url,
            json=statements,
            auth=self.auth,
            headers=XAPI_HEADERS,
            timeout=HTTP_TIMEOUT,
        )

    def statements(self, **params: str | int) -> list[dict[str, Any]]:
        """All stored statements matching `params`, following `more` links.

        Ralph's fs backend returns them in insertion order (oldest first).
        """
        found: list[dict[str, Any]] = []
        url = self.statements_url
        query: dict[str, str | int] | None = params
        for _ in range(MAX_PAGES):
            page = self._get_json(url, query)
            found.extend(page["statements"])
            more = page.get("more")
            # Ralph offers an extra, empty page when the total is a multiple of `limit`.
            if not more or not page["statements"]:
                return found
            url, query = urljoin(self.base_url, more), None
        raise RuntimeError(f"more than {MAX_PAGES} pages of statements; paging loop?")

    def get(self, statement_id: str) -> dict[str, Any] | None:
        """The stored statement with this id, or None."""
        body: dict[str, Any] = self._get_json(self.statements_url, {"statementId": statement_id})
        # Ralph 5.1.0 wraps single-statement answers in {"statements": [...]}.
        if "statements" in body:
            matches: list[dict[str, Any]] = body["statements"]
            return matches[0] if matches else None
        return body

    def _get_json(self, url: str, params: dict[str, str | int] | None) -> Any:
        response = self.session.get(
            url, params=params, auth=self.auth, headers=XAPI_HEADERS, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    # --- internals -------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        return ralph_env(
            {
                "RALPH_RUNSERVER_BACKEND": "fs",
                "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.data_dir),
                "RALPH_AUTH_FILE": str(self.auth_file),
                # Keep Ralph's app dir and fs-backend write history out of ~/.config.
                "RALPH_APP_DIR": str(self.tmp_dir),
                "RALPH_HISTORY_FILE": str(self.tmp_dir / "history.json"),
            }
        )

    def _spawn_server(self) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                # -I keeps tests/support (whose ralph.py shadows Ralph) off sys.path.
                [str(ralph_python()), "-I", str(LAUNCHER), HOST, str(self.port)],
                cwd=self.tmp_dir,
                env=self._server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _spawn_auth(self) -> subprocess.Popen[str]:
        # `ralph auth` imports ralph.api, which builds the LRS backend, so it needs the
        # server env too (the default "es" backend is not installed).
        command = [
            str(ralph_executable()),
            "auth",
            *("-u", self.username, "-p", self.password, "-s", "all"),
            *("-M", f"mailto:{self.username}@example.org", "-w"),
        ]
        return subprocess.Popen(
            command,
            cwd=self.tmp_dir,
            env=self._server_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _finish_auth(self, auth: subprocess.Popen[str]) -> None:
        try:
            output, _ = auth.communicate(timeout=self.startup_timeout)
        except subprocess.TimeoutExpired:
            auth.kill()
            output, _ = auth.communicate()
        if auth.returncode != 0 or not self.auth_file.exists():
            self.stop()
            raise RuntimeError(f"`ralph auth` failed (exit {auth.returncode}):\n{output}")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        whoami = urljoin(self.base_url, "whoami")
        while time.monotonic() < deadline:
            if not self.running:
                self._fail_startup("Ralph exited during startup")
            try:
                # /whoami also proves the credentials file is loaded and accepted.
                if self.session.get(whoami, auth=self.auth, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self._fail_startup(f"Ralph did not answer within {self.startup_timeout:.0f} s")

    def _fail_startup(self, reason: str) -> NoReturn:
        returncode = self._proc.poll() if self._proc else None
        self.stop()
        raise RuntimeError(
            f"{reason} (port {self.port}, exit code {returncode}). "
            f"Ralph's log ({self.log_path}, removed on exit) ends with:\n{self.log_tail()}"
        )


def validate_with_ralph(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate statements with Ralph's pydantic xAPI models, one result per statement.

    Each result is {"ok": True, "model": "<ModelClassName>"} or
    {"ok": False, "error": "<short message>"}.
    """
    if not statements:
        return []
    stdin = "".join(json.dumps(statement) + "\n" for statement in statements)
    result = subprocess.run(
        [str(ralph_python()), "-I", str(VALIDATOR)],
        input=stdin,
        env=ralph_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != len(statements):
        raise RuntimeError(
            f"ralph_validate.py failed (exit {result.returncode}, "
            f"{len(lines)} results for {len(statements)} statements):\n{result.stderr}"
        )
    return [json.loads(line) for line in lines]

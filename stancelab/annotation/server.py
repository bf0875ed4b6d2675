"""A local Label Studio server for annotation: ``stancelab label serve`` and the tests.

``stancelab label serve [--data-dir DIR] [--port N]`` runs ``LabelStudioServer`` in the
foreground. ``LabelStudioServer`` is also a context manager (the tests' session fixture uses
it): it starts ``label-studio`` from the ``annotate`` extra bound to 127.0.0.1 on a free
port (the data dir's port of its last start when that is free, so its URL stays the one that
pull records name), in a clean environment (a stray ``PORT``, ``HOST`` or ``USERNAME``
would leak into its settings), with telemetry and version checks off and sign-up disabled, waits for
``/health`` on the process it started, checks that the admin token works, and stops it
with SIGTERM.

A new data dir is a copy of a migrated template (``stancelab.annotation.launcher``), so a fresh
server
starts in seconds instead of a minute of database migrations. The admin user (email, random
password, random API token) is created on first start and recorded in
``<data dir>/stancelab-admin.json`` (mode 0600), next to the database that holds the same
secrets, so a restart reuses it. A lock file keeps a second server off a running data dir.

``serve`` then stores the URL and token where the other commands look for them
(``stancelab.annotation.credentials``). The token is never printed, logged or shown in a repr.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stancelab.annotation.credentials import (
    Credentials,
    ServerError,
    read_json,
    write_secret_json,
)
from stancelab.annotation.launcher import (
    DATABASE_FILE,
    ensure_template,
    label_studio_executable,
    server_env,
)
from stancelab.files import atomic_open
from stancelab.paths import state_dir

ADMIN_EMAIL = "admin@stancelab.local"
ADMIN_FILE = "stancelab-admin.json"
LOG_FILE = "server.log"
LOCK_FILE = ".stancelab-serve.lock"  # held while a server runs: one server per data dir
PORT_FILE = "stancelab-port"  # the port of the last start, taken again when free
START_TIMEOUT = 180.0  # generous: a bare data dir runs every migration before it starts


def default_data_dir() -> Path:
    return state_dir() / "labelstudio"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """No server listens on ``port``. The connections a server that just stopped had closed
    linger for a minute (TIME_WAIT); Label Studio binds over them with SO_REUSEADDR, as this
    check does, so a restart keeps its port. A listening socket still makes the bind fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    # Linux: SIGTERM the server if the process that started it dies, so a killed test run
    # or terminal never leaves an orphan holding memory and a port.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LabelStudioServer:
    """Start (``start()`` or ``with``) and stop a local Label Studio on one data dir."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        template: str | Path | None = None,
        log: Callable[[str], object] = print,
    ) -> None:
        self.data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
        self.port = port
        self.template = Path(template) if template else None
        self.log = log
        self.process: subprocess.Popen | None = None
        self.credentials: Credentials | None = None
        self.startup_seconds: float | None = None
        self.admin_email: str | None = None
        self._lock = None

    def __repr__(self) -> str:
        return f"LabelStudioServer(data_dir={str(self.data_dir)!r}, url={self.url!r})"

    @property
    def url(self) -> str | None:
        return self.credentials.url if self.credentials else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def _prepare_data_dir(self) -> dict:
        """Copy the template into a new data dir with a fresh admin record; return the record."""
        admin_path = self.data_dir / ADMIN_FILE
        if (self.data_dir / DATABASE_FILE).exists():
            if not admin_path.exists():
                raise ServerError(
                    f"{self.data_dir} holds a Label Studio database but no {ADMIN_FILE}, so "
                    "stancelab cannot know its admin token: use a new --data-dir"
                )
            record = read_json(admin_path)
            if not all(isinstance(record.get(k), str) for k in ("email", "password", "token")):
                raise ServerError(f"{admin_path}: incomplete admin record; use a new --data-dir")
            return record
        if any(p.name != LOCK_FILE for p in self.data_dir.iterdir()):
            raise ServerError(
                f"{self.data_dir} is not empty and holds no Label Studio database; "
                "use an empty or new --data-dir"
            )
        template = ensure_template(self.template, log=self.log)
        record = {
            "email": ADMIN_EMAIL,
            "password": secrets.token_urlsafe(18),
            "token": secrets.token_hex(20),
        }
        write_secret_json(admin_path, record)
        shutil.copy2(template / DATABASE_FILE, self.data_dir / DATABASE_FILE)
        return record

    def start(self, timeout: float = START_TIMEOUT) -> Credentials:
        if self.process is not None:
            raise ServerError("this server is already started")
        executable = label_studio_executable()
        started = time.monotonic()
        self._acquire_lock()
        try:
            admin = self._prepare_data_dir()
            port = self.port or self._last_port() or free_port()
            if not _port_is_free(port):
                raise ServerError(f"port {port} is busy; choose another --port or leave it out")
        except BaseException:
            self._release_lock()
            raise
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    "start",
                    "--no-browser",
                    "--internal-host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=server_env(self.data_dir, admin),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        launched = time.monotonic()
        creds = Credentials(f"http://127.0.0.1:{port}", admin["token"], source=str(self.data_dir))
        try:
            # from the launch: building the template first (once; minutes on a busy
            # machine) must not eat into the server's own time to start
            self._wait_healthy(creds.url, launched + timeout)
            self._check_token(creds)
        except BaseException:
            self.stop()
            raise
        with atomic_open(self.data_dir / PORT_FILE) as handle:
            handle.write(f"{port}\n")
        self.credentials = creds
        self.admin_email = admin["email"]
        self.startup_seconds = time.monotonic() - started
        return creds

    def _last_port(self) -> int | None:
        """The port of this data dir's last start, if it is free now. The URL is part of a
        project's identity in pull records (``stancelab.annotation.exports.PullRecord``): a
        new port each start would keep every later pull from showing a deletion."""
        try:
            port = int((self.data_dir / PORT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if 0 < port < 65536 and _port_is_free(port):
            return port
        self.log(f"note: port {port} of the last start is taken; the server gets a new URL")
        return None

    def _wait_healthy(self, url: str, deadline: float) -> None:
        import httpx

        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(
                    f"Label Studio exited with status {code} while starting; see {self.log_path}"
                )
            try:
                answer = httpx.get(f"{url}/health", timeout=2.0)
                if answer.status_code == 200 and answer.json().get("status") == "UP":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"Label Studio did not become healthy at {url}; see {self.log_path}"
                )
            time.sleep(0.25)

    def _check_token(self, creds: Credentials) -> None:
        # Also proves that the server answering on the port is the one we started with this
        # data dir (it moves to port+1 silently when the port is taken).
        import httpx

        answer = httpx.get(
            f"{creds.url}/api/current-user/whoami",
            timeout=10.0,
            headers={"Authorization": f"Token {creds.token}"},
        )
        if answer.status_code != 200:
            raise ServerError(
                f"the admin token recorded in {self.data_dir / ADMIN_FILE} was refused "
                f"({answer.status_code}): the data dir and its record disagree; "
                "use a new --data-dir"
            )

    def _acquire_lock(self) -> None:
        import fcntl

        if not self.data_dir.exists():
            self.data_dir.mkdir(parents=True)
            self.data_dir.chmod(0o700)  # the database and the admin record hold credentials
        handle = open(self.data_dir / LOCK_FILE, "w")  # held until stop()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ServerError(
                f"a Label Studio started by stancelab already runs on {self.data_dir}"
            ) from None
        self._lock = handle

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's process group; SIGKILL if it hangs."""
        process, self.process = self.process, None
        try:
            if process is None or process.poll() is not None:
                return
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
        finally:
            self._release_lock()

    def wait(self) -> int:
        """Block until the server exits; returns its exit status."""
        return self.process.wait() if self.process else 0

    def __enter__(self) -> LabelStudioServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

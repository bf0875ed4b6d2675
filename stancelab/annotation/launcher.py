"""How to run the ``label-studio`` program: where it is, its clean environment, its template.

``server_env`` builds the environment from nothing (settings are read as ``LABEL_STUDIO_X``,
then ``HEARTEX_X``, then bare ``X``, so an inherited ``PORT``, ``HOST`` or ``USERNAME`` would
leak in): HOME and the data dir point at the server's own folder, telemetry, Sentry and the
version check are off, sign-up is disabled and the legacy API token is enabled (without it a
preset token gets 401 in a new organisation).

``ensure_template`` builds, once per Label Studio version, a migrated data dir with no user in
it (``label-studio init -q``) in the state dir; ``stancelab.annotation.server`` copies its
database into every new data dir, which then starts without running migrations.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from stancelab.annotation.credentials import ServerError
from stancelab.paths import state_dir

LS_VERSION = "1.23.2"  # the version the `annotate` extra pins; the template is per version
DATABASE_FILE = "label_studio.sqlite3"
INSTALL_HINT = "Label Studio is not installed: pip install -e '.[annotate]'"


def label_studio_executable() -> str:
    """The ``label-studio`` script of this interpreter's environment, else one on PATH."""
    beside = Path(sys.executable).parent / "label-studio"
    found = str(beside) if beside.exists() else shutil.which("label-studio")
    if not found:
        raise ServerError(INSTALL_HINT)
    return found


def server_env(data_dir: Path, admin: dict | None = None) -> dict[str, str]:
    """A clean environment: nothing inherited but PATH (and TMPDIR), everything else explicit."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
        "HOME": str(data_dir),  # otherwise it writes ~/.local/share and ~/.config
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # else the preset token gets 401
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "PYTHONUNBUFFERED": "1",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    if admin:
        env["LABEL_STUDIO_USERNAME"] = admin["email"]
        env["LABEL_STUDIO_PASSWORD"] = admin["password"]
        env["LABEL_STUDIO_USER_TOKEN"] = admin["token"]  # applied when the user is created
    return env


def template_dir() -> Path:
    return state_dir() / f"labelstudio-template-{LS_VERSION}"


def ensure_template(path: Path | None = None, log: Callable[[str], object] = print) -> Path:
    """A migrated, user-less data dir to copy from; built once with ``init -q``."""
    path = Path(path) if path else template_dir()
    if (path / DATABASE_FILE).exists():
        return path
    executable = label_studio_executable()
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"building a Label Studio {LS_VERSION} template data dir in {path} (once, ~30 s) ...")
    build = Path(tempfile.mkdtemp(prefix=".template-", dir=path.parent))
    try:
        done = subprocess.run(
            [executable, "init", "-q"],
            env=server_env(build),
            cwd=build,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not (build / DATABASE_FILE).exists():
            tail = " | ".join(done.stdout.strip().splitlines()[-3:])
            raise ServerError(f"`label-studio init -q` failed ({done.returncode}): {tail}")
        # Keep only the database: the generated SECRET_KEY (.env) and the telemetry id
        # (.config) must be fresh for every server made from the template.
        for entry in build.iterdir():
            if entry.name != DATABASE_FILE:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        try:
            build.rename(path)
        except OSError:  # built concurrently by another process: theirs is as good
            if not (path / DATABASE_FILE).exists():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return path

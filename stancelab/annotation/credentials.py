"""Where stancelab finds a Label Studio server, and the API token for it.

Lookup order for every command that talks to a server (``load_credentials``):
``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY`` from the environment (both or neither), else
the file ``stancelab label serve`` writes: ``<state dir>/labelstudio.json``, mode 0600. The
state dir is ``$STANCELAB_HOME``, by default ``~/.local/share/stancelab``: outside the
repository, so no credential is ever committed. The token never appears in a repr, a log
line or an error message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from stancelab.errors import StancelabError
from stancelab.files import atomic_open
from stancelab.paths import state_dir

CREDENTIALS_FILE = "labelstudio.json"


class ServerError(StancelabError):
    """The server could not be started, reached or authenticated against."""


@dataclass(frozen=True)
class Credentials:
    """Where a Label Studio server is and the API token for it (hidden from repr)."""

    url: str
    token: str = field(repr=False)
    source: str = field(default="", compare=False)  # where they came from, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))


def check_credentials(creds: Credentials) -> None:
    """ServerError, before any request, when the URL cannot be one of a server (a mistyped
    port, no ``http://``) or the token cannot go in an HTTP header (white space or a line
    break, say from a file read with its newline; a non-ASCII character): one line naming
    the URL, and saying what is wrong with the token without showing it."""
    import httpx

    where = f"the Label Studio URL {creds.url!r} (from {creds.source or 'the caller'})"
    try:
        url = httpx.URL(creds.url)
    except httpx.InvalidURL as exc:
        raise ServerError(
            f"{where} is not a valid URL ({exc}); expected http://HOST:PORT"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ServerError(f"{where} is not a valid URL; expected http://HOST:PORT")
    token = creds.token
    checks = [
        (not token, "it is empty"),
        (any(c.isspace() for c in token), "it holds white space or a line break (a newline?)"),
        (not token.isascii(), "it holds a non-ASCII character (a typographic quote?)"),
        (not token.isprintable(), "it holds a control character"),
    ]
    problem = next((what for failed, what in checks if failed), None)
    if problem:
        raise ServerError(
            f"the API token from {creds.source or 'the caller'} is malformed: {problem}; "
            "copy it again from Label Studio (Account & Settings) or `stancelab label serve`"
        )


def credentials_path() -> Path:
    return state_dir() / CREDENTIALS_FILE


def write_secret_json(path: Path, obj: dict) -> None:
    # atomic_open writes through mkstemp, so the file is 0600 from the start; chmod in case
    # a umask or filesystem widened it.
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)


def read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ServerError(
            f"{path}: cannot read ({exc.__class__.__name__}); delete it and retry"
        ) from None
    if not isinstance(obj, dict):
        raise ServerError(f"{path}: not a JSON object; delete it and retry")
    return obj


def save_credentials(creds: Credentials, **extra: str) -> Path:
    path = credentials_path()
    write_secret_json(path, {"url": creds.url, "token": creds.token, **extra})
    return path


def load_credentials() -> Credentials:
    """Environment first (``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY``), then the stored file."""
    url, key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
    if key:
        if not url:
            raise ServerError("LABEL_STUDIO_API_KEY is set but LABEL_STUDIO_URL is not; set both")
        return Credentials(url, key, source="LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY")
    if url:
        raise ServerError("LABEL_STUDIO_URL is set but LABEL_STUDIO_API_KEY is not; set both")
    path = credentials_path()
    if not path.exists():
        raise ServerError(
            "no Label Studio server known: start one with `stancelab label serve`, "
            "or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"
        )
    stored = read_json(path)
    if not isinstance(stored.get("url"), str) or not isinstance(stored.get("token"), str):
        raise ServerError(f"{path}: missing url or token; restart `stancelab label serve`")
    return Credentials(stored["url"], stored["token"], source=str(path))

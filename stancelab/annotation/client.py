"""Talk to a Label Studio server: push sentences as tasks, record annotations, fetch exports.

Used by ``stancelab label push | record | pull`` (``stancelab.cli.label``); the server and
token come from ``stancelab.annotation.credentials.load_credentials``. Every write passes
``max_retries: 0`` (the SDK would otherwise re-send a POST whose first try may have landed)
and every write is idempotent instead: tasks are keyed by the sentence id in ``data.id`` and
an existing id is never imported again, predictions by (task, model_version), recorded
annotations by (task, annotator). An interrupted run is finished by running it again. Each of
those reads what the project holds, then writes what is missing: ``project_lock`` lets one
writer at a time into a project (push, record, and suggest/review in
``stancelab.active.assist``), so two runs at once cannot both import the same sentences.

Server errors become one-line ``ServerError`` messages; the token never appears in them.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stancelab.annotation.credentials import Credentials, ServerError, check_credentials
from stancelab.annotation.exports import PullRecord
from stancelab.annotation.interface import CONTROL_NAME, RESULT_TYPE, TEXT_NAME, label_config
from stancelab.annotation.tasks import (
    ModelPredictor,
    PreAnnotation,
    build_tasks,
    meta_notes,
    model_versions,
    prediction_payload,
    read_annotation_file,
    read_sentences,
)
from stancelab.corpus.text import first_names
from stancelab.errors import InputError
from stancelab.files import lock_file
from stancelab.paths import state_dir

if TYPE_CHECKING:  # the SDK is imported only when a command talks to a server
    from label_studio_sdk import LabelStudio

DEFAULT_PROJECT = "stancelab"
IMPORT_CHUNK = 250  # tasks per import request: a failure loses at most one request's work
WRITE = {"max_retries": 0}
EXPORT_TIMEOUT = 300.0


def connect(creds: Credentials) -> LabelStudio:
    """An SDK client, after a check of the URL and token (``check_credentials``) and one
    quick un-retried look at ``/health``.

    The SDK retries a failed read for about 3 s; a server that is down should be reported at
    once (``api_errors`` turns the connection error into one line).
    """
    import httpx
    from label_studio_sdk import LabelStudio

    check_credentials(creds)
    httpx.get(f"{creds.url}/health", timeout=10.0).raise_for_status()
    return LabelStudio(base_url=creds.url, api_key=creds.token, timeout=120)


@contextlib.contextmanager
def api_errors(creds: Credentials, doing: str) -> Iterator[None]:
    """Turn connection and HTTP errors into one line naming the server, never the token."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except httpx.TransportError as exc:
        raise ServerError(
            f"cannot reach Label Studio at {creds.url} while {doing} "
            f"({exc.__class__.__name__}); is `stancelab label serve` running?{_notes(exc)}"
        ) from None
    except httpx.HTTPStatusError as exc:
        raise ServerError(
            f"{creds.url} answered {exc.response.status_code} to GET /health; "
            "is it a Label Studio server? (check LABEL_STUDIO_URL)"
        ) from None
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise ServerError(
                f"Label Studio at {creds.url} refused the API token ({exc.status_code}) while "
                f"{doing}; check LABEL_STUDIO_API_KEY or the credentials from {creds.source}"
            ) from None
        body = " ".join(str(exc.body).split())[:200]
        raise ServerError(
            f"Label Studio at {creds.url} answered {exc.status_code} while "
            f"{doing}: {body}{_notes(exc)}"
        ) from None


@contextlib.contextmanager
def project_lock(creds: Credentials, title: str) -> Iterator[None]:
    """Be the only stancelab command writing into project ``title`` of this server.

    Every write to a project reads what it holds and then adds what is missing (tasks by
    sentence id, predictions, annotations): two at once would both add it. A second writer
    is refused at once. The lock is a file in the state dir keyed by the server URL and the
    project title (``flock``, so a crash leaves no stale lock); it guards the commands of
    this state dir, not other machines or users of the same server.
    """
    key = hashlib.sha256(f"{creds.url}\n{title}".encode()).hexdigest()[:24]
    folder = state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"labelstudio-project-{key}.lock"
    busy = (
        f"another stancelab label push/record/suggest/review is writing into project "
        f"{title!r} at {creds.url}; wait for it to finish and run the command again"
    )
    with lock_file(lock, busy):
        yield


def _notes(exc: BaseException) -> str:
    return "".join(f"; {note}" for note in getattr(exc, "__notes__", []))


def import_in_chunks(
    ls: LabelStudio, project_id: int, tasks: list[dict], report, chunk: int = IMPORT_CHUNK
) -> None:
    """Import tasks in chunks, counting into ``report`` (``imported``,
    ``predictions_with_new_tasks``); a failure says how far it got. Callers skip sentence ids
    already in the project, so running the command again finishes without duplicates."""
    for start in range(0, len(tasks), chunk):
        part = tasks[start : start + chunk]
        try:
            ls.projects.import_tasks(
                id=project_id, request=part, return_task_ids=True, request_options=WRITE
            )
        except Exception as exc:
            exc.add_note(
                f"{report.imported} of {len(tasks)} new task(s) were imported before the "
                "failure; run the command again to finish (nothing is duplicated)"
            )
            raise
        report.imported += len(part)
        report.predictions_with_new_tasks += sum(1 for t in part if t.get("predictions"))


def find_project(ls: LabelStudio, title: str):
    """The project with this exact title (an error when there is none, or several)."""
    matches = [p for p in ls.projects.list() if p.title == title]
    if len(matches) > 1:
        ids = ", ".join(str(p.id) for p in matches)
        raise ServerError(f"several projects are titled {title!r} (ids {ids}); rename all but one")
    if matches:
        return matches[0]
    raise ServerError(
        f"no project titled {title!r}; create it with `stancelab label push --project {title!r}`"
    )


def project_for(
    ls: LabelStudio,
    title: str,
    config: str | None = None,
    description: str = "stancelab: sentences to label with the stance scheme",
) -> tuple[object, bool]:
    """The project with this title and whether it was created now (with ``config``, by
    default the labelling interface)."""
    exists = any(p.title == title for p in ls.projects.list())
    if not exists:
        if len(title) < 3:
            raise InputError(
                f"project title {title!r} is too short (Label Studio needs 3+ characters)"
            )
        ls.projects.create(
            title=title,
            label_config=config or label_config(),
            description=description,
            request_options=WRITE,
        )
    return find_project(ls, title), not exists


def sentence_tasks(ls: LabelStudio, project_id: int, include: str = "id,data") -> dict[str, list]:
    """Tasks of the project by sentence id (``data.id``), lowest task id first."""
    out: dict[str, list] = {}
    for task in ls.tasks.list(project=project_id, include=include, page_size=1000):
        sid = (task.data or {}).get("id")
        if isinstance(sid, str):
            out.setdefault(sid, []).append(task)
    for tasks in out.values():
        tasks.sort(key=lambda t: t.id)
    return out


@dataclass
class PushReport:
    project: str
    project_id: int
    created: bool
    sentences: int
    imported: int = 0
    already_present: int = 0
    predictions_with_new_tasks: int = 0
    predictions_added: int = 0  # to tasks that were already in the project
    model_version: str = ""
    notes: list[str] = field(default_factory=list)


def push(
    creds: Credentials,
    project: str,
    sentences_path: str | Path,
    *,
    predictor: ModelPredictor | None = None,
    predictions: dict[str, PreAnnotation] | None = None,
    chunk: int = IMPORT_CHUNK,
) -> PushReport:
    """Import the sentences not yet in the project, with pre-annotations when given.

    ``predictor(sentences) -> {id: PreAnnotation}`` is called only for the sentences that need a
    prediction (new tasks, and existing tasks without one of that model version);
    ``predictions`` is the same mapping read from a file.
    A task's data is never rewritten, its ``meta`` included (``meta_notes`` says when it differs
    from the file's, or when the project's interface does not show it).
    """
    skipped: list[str] = []  # a predict output's error rows and rows without an id
    sentences = read_sentences(sentences_path, skipped)
    with api_errors(creds, "pushing tasks"), project_lock(creds, project):
        ls = connect(creds)
        proj, created = project_for(ls, project)
        report = PushReport(project, proj.id, created, len(sentences), notes=skipped)
        if proj.label_config.strip() != label_config().strip():
            report.notes.append(
                "the project's labelling interface differs from "
                "labels/label_config.xml (created by an older scheme?)"
            )
        if predictions is not None:
            strays = len(set(predictions) - {s["id"] for s in sentences})
            if strays:
                report.notes.append(
                    f"{strays} prediction(s) for sentences not in {sentences_path} were not used"
                )
        present = sentence_tasks(ls, proj.id)
        new = [s for s in sentences if s["id"] not in present]
        report.already_present = len(sentences) - len(new)
        pushed = {sid: tasks[0].data or {} for sid, tasks in present.items()}
        report.notes += meta_notes(sentences, pushed, proj.label_config, sentences_path)
        preds: dict[str, PreAnnotation] = {}
        lacking: list[tuple[int, dict]] = []  # (task id, sentence) needing a prediction
        if predictor is not None or predictions is not None:
            have = {(p.task, p.model_version) for p in ls.predictions.list(project=proj.id)}
            version_of = (
                (lambda s: predictor.model_version)
                if predictor is not None
                else (
                    lambda s: predictions[s["id"]].model_version if s["id"] in predictions else None
                )
            )
            for s in sentences:
                version = version_of(s)
                if s["id"] in present and version is not None:
                    task_id = present[s["id"]][0].id
                    if (task_id, version) not in have:
                        lacking.append((task_id, s))
            wanted = new + [s for _, s in lacking]
            if predictor is not None:
                preds = predictor(wanted) if wanted else {}
                report.model_version = predictor.model_version
            else:
                preds = {s["id"]: predictions[s["id"]] for s in wanted if s["id"] in predictions}
                report.model_version = model_versions(preds)  # of the predictions pushed
        tasks = build_tasks(sentences, new, preds)
        import_in_chunks(ls, proj.id, tasks, report, chunk)
        for task_id, s in lacking:
            pred = preds.get(s["id"])
            if pred is None:
                continue
            payload = prediction_payload(pred)
            ls.predictions.create(
                task=task_id,
                result=payload["result"],
                score=payload["score"],
                model_version=payload["model_version"],
                request_options=WRITE,
            )
            report.predictions_added += 1
    return report


@dataclass
class RecordReport:
    annotator: str
    created_user: bool
    recorded: int = 0
    already_annotated: int = 0


def record(creds: Credentials, project: str, path: str | Path, annotator: str) -> RecordReport:
    """Record annotations made outside the browser as ``annotator`` (created if needed)."""
    if "@" not in annotator or any(c.isspace() for c in annotator):
        raise InputError(f"--annotator {annotator!r} is not an email address")
    rows = read_annotation_file(path)
    with api_errors(creds, "recording annotations"), project_lock(creds, project):
        ls = connect(creds)
        proj = find_project(ls, project)
        tasks = sentence_tasks(ls, proj.id, include="id,data,annotators")
        missing = [sid for sid, _ in rows if sid not in tasks]
        if missing:
            shown = first_names(missing)
            raise InputError(
                f"{path}: {len(missing)} sentence id(s) are not tasks of project "
                f"{project!r} (push them first): {shown}"
            )
        user = next(
            (u for u in ls.users.list() if (u.email or "").lower() == annotator.lower()), None
        )
        report = RecordReport(annotator, user is None)
        if user is None:
            user = ls.users.create(username=annotator, email=annotator, request_options=WRITE)
        for sid, labels in rows:
            if any(user.id in (t.annotators or []) for t in tasks[sid]):
                report.already_annotated += 1
                continue
            result = (
                [
                    {
                        "from_name": CONTROL_NAME,
                        "to_name": TEXT_NAME,
                        "type": RESULT_TYPE,
                        "value": {"choices": list(labels)},
                    }
                ]
                if labels
                else []
            )
            ls.annotations.create(
                id=tasks[sid][0].id, result=result, completed_by=user.id, request_options=WRITE
            )
            report.recorded += 1
    return report


def fetch_export(creds: Credentials, project: str) -> tuple[bytes, PullRecord | None]:
    """Full JSON of every task, with full predictions and annotators' emails, and its
    ``PullRecord`` (None if the server left out a time it needs).

    The snapshot is made without task or annotation filters, so it holds every task and every
    annotation (skipped ones too) of the project: what it lacks was not there when it ran.
    """
    with api_errors(creds, "exporting"):
        ls = connect(creds)
        proj = find_project(ls, project)
        snapshot = ls.projects.exports.create(
            proj.id,
            title="stancelab pull",
            serialization_options={
                "predictions": {"only_id": False},
                "annotations__completed_by": {"only_id": False},
            },
            request_options=WRITE,
        )
        deadline = time.monotonic() + EXPORT_TIMEOUT
        # finished_at is saved just after the status: wait for both
        while snapshot.status != "failed" and (
            snapshot.status != "completed" or snapshot.finished_at is None
        ):
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the export of {project!r} did not finish in {EXPORT_TIMEOUT:.0f} s"
                )
            time.sleep(0.5)
            snapshot = ls.projects.exports.get(proj.id, snapshot.id)
        if snapshot.status == "failed":
            raise ServerError(f"Label Studio failed to export project {project!r}")
        data = b"".join(ls.projects.exports.download(proj.id, snapshot.id, export_type="JSON"))
        with contextlib.suppress(Exception):  # housekeeping only; the bytes are what matter
            ls.projects.exports.delete(proj.id, snapshot.id, request_options=WRITE)
    times = (proj.created_at, snapshot.created_at, snapshot.finished_at)
    if any(getattr(t, "tzinfo", None) is None for t in times):
        return data, None  # no trustworthy server time: counted like an imported export
    return data, PullRecord(
        creds.url,
        proj.id,
        times[0].isoformat(),
        proj.title,
        snapshot.id,
        times[1].isoformat(),
        times[2].isoformat(),
    )

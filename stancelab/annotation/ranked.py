"""Ranked tasks in Label Studio: the push behind ``stancelab label suggest`` and ``review``.

``stancelab.active.assist`` decides what to push (sentences to label next; gold sentences likely
mislabelled, for a review project whose interface ``review_config`` adds a read-only panel
with the gold and predicted labels); this module pushes it.

``push_ranked``: the rank is stored in the task data (``rank``, ``review_rank``; 1 = first),
new tasks are imported in rank order (so even the default sequential order follows it), and
a data-manager tab of the ranked tasks not yet annotated, ordered by the rank, is created once
("stancelab: label next", "stancelab: likely label errors"); "Label All Tasks" from that tab
follows its order. Pushes are idempotent like ``stancelab.annotation.client.push``: tasks are keyed
by
the sentence id, an existing unannotated task is re-ranked in place, a prediction is added only
if the task lacks one of that model version, and tasks ranked by an earlier run but not chosen
now lose their rank. Annotated tasks are never changed, nor is a task's ``meta`` (the record's
fields it was pushed with, as in ``push``). Callers hold
``stancelab.annotation.client.project_lock`` from their first read of the project to the last
write, so a second run into the same project is refused, not interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stancelab.annotation.client import WRITE, import_in_chunks, sentence_tasks
from stancelab.annotation.interface import META_LINE_NAME, META_NAME, label_config
from stancelab.corpus.text import preview

SUGGEST_VIEW = "stancelab: label next"
REVIEW_VIEW = "stancelab: likely label errors"
SUGGEST_KEYS = ("rank", "strategy", "priority_score")  # task data added by suggest
REVIEW_KEYS = ("review_rank", "error_score", "flagged_by", "suspect", "gold", "predicted", "review")
_REVIEW_STYLE = (
    "margin-top: 1em; padding: 0.5em 0.8em; border-left: 3px solid #e0a000; "
    "background: #fffbea; white-space: pre-wrap"
)


def review_config() -> str:
    """The labelling interface plus a read-only panel: gold, prediction, why it was flagged."""
    panel = (
        f'  <View style="{_REVIEW_STYLE}">\n'
        '    <Header value="Review: the gold labels and the out-of-fold prediction" size="6"/>\n'
        '    <Text name="review" value="$review" selectionEnabled="false"/>\n'
        "  </View>\n"
    )
    base = label_config()
    marker = "  </Choices>\n"
    if marker not in base:  # the generated config changed shape: fail loudly, not silently
        raise RuntimeError("label_config() has no '</Choices>' line to put the review panel after")
    return base.replace(marker, marker + panel, 1)


def annotated(task) -> bool:
    """Has any annotation, skipped ones included (a skipped sentence is not suggested again)."""
    return bool(getattr(task, "total_annotations", 0) or getattr(task, "cancelled_annotations", 0))


@dataclass
class RankedReport:
    project: str
    project_id: int
    created: bool
    ranked: int = 0  # tasks pushed or re-ranked by this run
    imported: int = 0
    reranked: int = 0  # existing tasks whose data changed (rank, scores)
    unchanged: int = 0
    unranked: int = 0  # ranked by an earlier run, not chosen now
    skipped_annotated: int = 0
    predictions_with_new_tasks: int = 0
    predictions_added: int = 0
    view_created: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self, verb: str, unranked: str) -> str:
        made = "created" if self.created else "existing"
        return (
            f"project {self.project!r} ({made}, id {self.project_id}): {self.ranked} "
            f"sentence(s) {verb}: {self.imported} new task(s), {self.reranked} re-ranked, "
            f"{self.unchanged} unchanged; {self.unranked} {unranked}"
        )

    def footer(self, view: str, rows: list[dict], show: int = 10) -> list[str]:
        state = "created" if self.view_created else "exists"
        out = [f"data-manager tab {view!r} ({state}) lists them in rank order"]
        for row in rows[:show]:
            text = preview(row["text"], 70)
            extra = f"  [{row['suspect']}]" if "suspect" in row else ""
            out.append(f"  {row['rank']:>3}. {row['id']}  {text}{extra}")
        if len(rows) > show:
            out.append(f"  ... and {len(rows) - show} more")
        return out


RANKED_DESCRIPTION = "stancelab: sentences ranked by stancelab"


def existing_tasks(ls, project_id: int) -> dict[str, list]:
    return sentence_tasks(ls, project_id, include="id,data,total_annotations,cancelled_annotations")


def push_ranked(
    ls,
    proj,
    created: bool,
    payloads: list[dict],
    rank_key: str,
    owned_keys: tuple[str, ...],
    view_title: str,
    present: dict[str, list] | None = None,
) -> RankedReport:
    """Push ``payloads`` (import dicts, best first, ``data[rank_key]`` set) idempotently."""
    report = RankedReport(proj.title, proj.id, created)
    present = existing_tasks(ls, proj.id) if present is None else present
    have = {(p.task, p.model_version) for p in ls.predictions.list(project=proj.id)}
    new = []
    for payload in payloads:
        tasks = present.get(payload["data"]["id"])
        if not tasks:
            new.append(payload)
            continue
        if any(annotated(t) for t in tasks):
            report.skipped_annotated += 1
            continue
        task = tasks[0]
        old = dict(task.data or {})
        incoming = {
            k: v for k, v in payload["data"].items() if k not in (META_NAME, META_LINE_NAME)
        }
        data = {k: v for k, v in old.items() if k not in owned_keys} | incoming
        if data != old:
            ls.tasks.update(id=str(task.id), data=data, request_options=WRITE)
            report.reranked += 1
        else:
            report.unchanged += 1
        for pred in payload.get("predictions", []):
            if (task.id, pred["model_version"]) not in have:
                ls.predictions.create(task=task.id, **pred, request_options=WRITE)
                report.predictions_added += 1
        report.ranked += 1
    chosen = {p["data"]["id"] for p in payloads}
    for sid, tasks in present.items():
        for task in tasks:
            data = dict(task.data or {})
            if sid not in chosen and rank_key in data and not annotated(task):
                kept = {k: v for k, v in data.items() if k not in owned_keys}
                ls.tasks.update(id=str(task.id), data=kept, request_options=WRITE)
                report.unranked += 1
    import_in_chunks(ls, proj.id, new, report)
    report.ranked += len(new)
    report.view_created = ensure_view(ls, proj.id, view_title, rank_key)
    return report


def ensure_view(ls, project_id: int, title: str, rank_key: str) -> bool:
    """A data-manager tab of the ranked tasks not yet annotated, in rank order; created once."""
    if any((v.data or {}).get("title") == title for v in ls.views.list(project=project_id)):
        return False  # the user may have adjusted it: leave it alone

    def item(name: str, operator: str, value: int) -> dict:
        return {
            "filter": f"filter:tasks:{name}",
            "operator": operator,
            "type": "Number",
            "value": value,
        }

    ls.views.create(
        project=project_id,
        data={
            "title": title,
            "ordering": [f"tasks:data.{rank_key}"],
            "filters": {
                "conjunction": "and",
                "items": [
                    item(f"data.{rank_key}", "greater", 0),
                    item("total_annotations", "equal", 0),
                    item("cancelled_annotations", "equal", 0),
                ],
            },
        },
        request_options=WRITE,
    )
    return True

"""``stancelab label ...``: annotation in Label Studio, and the gold set derived from it.

    stancelab label serve  [--data-dir DIR] [--port N]      a local server (Ctrl-C stops it)
    stancelab label push   [--project NAME] [--sentences FILE] [--model DIR | --predictions FILE]
    stancelab label record FILE --annotator EMAIL [--project NAME]
    stancelab label pull   [--project NAME]                 export -> labels/exports/ -> gold
    stancelab label import FILE                             the same from an export file
    stancelab label gold                                    rebuild gold from labels/exports/
    stancelab label suggest [--model DIR] [--k N] [--strategy uncertainty|diversity|random]
    stancelab label review  [--predictions FILE | --model RUN_DIR | --config FILE] [--k N]

Every command is a thin shell over ``stancelab.annotation`` (``server``, ``client``, ``tasks``,
``gold``); the Label Studio SDK is imported only when a command needs it. A user error prints
one line on stderr and exits with status 1, with every file left as it was.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from stancelab.annotation.exports import PullRecord

from stancelab.annotation.client import DEFAULT_PROJECT
from stancelab.cli._util import fail, one_line_errors
from stancelab.errors import StancelabError
from stancelab.paths import DEFAULT_MODEL_DIR, EXPORTS_DIR, GOLD_PATH, SENTENCES_PATH

app = typer.Typer(
    help="Annotate in Label Studio: serve, push, record, pull, import; derive the gold set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOpt = Annotated[str, typer.Option(help="Label Studio project title.")]
ExportsOpt = Annotated[Path, typer.Option(help="Folder of immutable raw exports.")]
GoldOpt = Annotated[
    Path | None,
    typer.Option(help=f"Gold JSONL (default {GOLD_PATH}); agreement report beside it."),
]
GoldInOpt = Annotated[Path | None, typer.Option(help=f"Gold JSONL (default {GOLD_PATH}).")]
SentencesOpt = Annotated[Path, typer.Option(help="Sentences JSONL from `stancelab corpus`.")]
PreannotateOpt = Annotated[
    Path | None, typer.Option(help="Model directory: pre-annotate with its predictions.")
]
PredictionsOpt = Annotated[
    Path | None, typer.Option(help="Predictions JSONL from a predict run, to pre-annotate.")
]


def _inside_git_repo(path: Path) -> bool:
    return any((parent / ".git").exists() for parent in [path, *path.parents])


@app.command()
def serve(
    data_dir: Annotated[
        Path | None, typer.Option(help="Server data (default: the state dir, outside the repo).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")
    ] = None,
) -> None:
    """Start a local Label Studio and keep it running until Ctrl-C."""
    from stancelab.annotation.credentials import credentials_path, save_credentials
    from stancelab.annotation.server import ADMIN_FILE, LabelStudioServer

    server = LabelStudioServer(data_dir, port=port, log=lambda m: typer.echo(m, err=True))
    for place in (server.data_dir, credentials_path()):
        if _inside_git_repo(place):
            typer.echo(
                f"warning: {place} is inside a git repository and will hold credentials: "
                "keep it out of version control (see --data-dir and STANCELAB_HOME)",
                err=True,
            )
    # SIGTERM (e.g. from a process manager) stops the server as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        creds = server.start()
        stored = save_credentials(creds, data_dir=str(server.data_dir))
        typer.echo(f"Label Studio is up at {creds.url} ({server.startup_seconds:.1f} s)")
        typer.echo(f"  log in as {server.admin_email}; password in {server.data_dir / ADMIN_FILE}")
        typer.echo(f"  API credentials stored in {stored} for `stancelab label push/pull/record`")
        typer.echo(f"  server log: {server.log_path}; Ctrl-C stops it")
        code = server.wait()
        fail(f"Label Studio exited with status {code}; see {server.log_path}")
    except StancelabError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("stopping Label Studio", err=True)
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


@app.command()
def push(
    project: ProjectOpt = DEFAULT_PROJECT,
    sentences: SentencesOpt = SENTENCES_PATH,
    model: PreannotateOpt = None,
    predictions: PredictionsOpt = None,
) -> None:
    """Import sentences as tasks (only those not yet in the project), with pre-annotations."""
    from stancelab.annotation.client import push as push_tasks
    from stancelab.annotation.credentials import load_credentials
    from stancelab.annotation.tasks import ModelPredictor, read_predictions

    if model is not None and predictions is not None:
        fail("use --model or --predictions, not both")
    with one_line_errors():
        predictor = ModelPredictor(model) if model is not None else None
        preds, skipped = read_predictions(predictions) if predictions else (None, {})
        report = push_tasks(
            load_credentials(), project, sentences, predictor=predictor, predictions=preds
        )
    made = "created" if report.created else "existing"
    typer.echo(
        f"project {report.project!r} ({made}, id {report.project_id}): {report.imported} new "
        f"task(s) imported; {report.already_present} of {report.sentences} sentence(s) were there"
    )
    if model is not None or predictions is not None:
        version = f" ({report.model_version})" if report.model_version else ""
        typer.echo(
            f"pre-annotations{version}: {report.predictions_with_new_tasks} with new tasks, "
            f"{report.predictions_added} added to existing tasks"
        )
    for reason, count in skipped.items():
        if count:
            typer.echo(f"skipped {count} prediction row(s) with {reason}", err=True)
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


@app.command()
def record(
    file: Annotated[Path, typer.Argument(help='JSONL of {"id": sentence id, "labels": [...]}.')],
    annotator: Annotated[str, typer.Option(help="Annotator's email (user created if needed).")],
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """Record annotations made outside the browser, as the named annotator (idempotent)."""
    from stancelab.annotation.client import record as record_annotations
    from stancelab.annotation.credentials import load_credentials

    with one_line_errors():
        report = record_annotations(load_credentials(), project, file, annotator)
    who = report.annotator + (" (new user)" if report.created_user else "")
    typer.echo(f"{who}: {report.recorded} annotation(s) recorded, ", nl=False)
    typer.echo(f"{report.already_annotated} sentence(s) already annotated by them")


def _derive(
    exports: Path,
    gold: Path | None,
    new: tuple[str, bytes] | None = None,
    source: Path | None = None,
    origin: str | None = None,
    pull: PullRecord | None = None,
) -> None:
    from stancelab.annotation.agreement import deleted_line
    from stancelab.annotation.gold import update_gold
    from stancelab.corpus.text import first_names

    with one_line_errors():
        inputs = [source] if source else []
        shown = origin or (str(source) if source else None)
        update = update_gold(exports, gold or GOLD_PATH, new, inputs, shown, pull)
    for line in update.recovered:  # removed debris of a killed import; kept orphan records
        typer.echo(f"note: {line}", err=True)
    if update.stored is not None:
        beside = ".sha256, .pull" if pull is not None else ".sha256"
        typer.echo(f"stored {update.stored} (+ {beside})")
    elif update.duplicate_of is not None:
        typer.echo(f"identical to {update.duplicate_of}; nothing new stored")
    result, paths = update.result, update.paths
    typer.echo(
        f"gold: {len(result.rows)} sentence(s) from {len(result.exports)} export(s) "
        f"-> {paths['gold']}"
    )
    if any(result.deleted.values()):
        typer.echo(deleted_line(update.report))
    if result.unnamed:
        shown = first_names(result.unnamed)
        typer.echo(
            f"warning: {len(result.unnamed)} annotator(s) known by user id only ({shown}), as "
            "an export downloaded from the UI gives them: none counts as an adjudicator, and "
            "one id in exports of two servers is one annotator; `stancelab label pull` the "
            "project to have their emails",
            err=True,
        )
    if result.ties:
        typer.echo(f"{len(result.ties)} sentence(s) tied, to adjudicate: see {paths['markdown']}")
    parts = []
    for label, row in update.report["labels"].items():
        value = "n/a" if row["alpha"] is None else f"{row['alpha']:.2f}"
        parts.append(f"{label} {value} ({row['units']} units)")
    typer.echo(f"Krippendorff's alpha: {'; '.join(parts)} -> {paths['agreement']}")


@app.command()
def pull(
    project: ProjectOpt = DEFAULT_PROJECT,
    exports: ExportsOpt = EXPORTS_DIR,
    gold: GoldOpt = None,
) -> None:
    """Export the project (full JSON, all tasks) into labels/exports/, then derive gold."""
    from stancelab.annotation.client import fetch_export
    from stancelab.annotation.credentials import load_credentials
    from stancelab.annotation.gold import check_gold_paths

    with one_line_errors():
        check_gold_paths(exports, gold or GOLD_PATH, [], storing=True)  # before the export
        data, record = fetch_export(load_credentials(), project)
    _derive(
        exports, gold, (project, data), origin=f"the export of project {project!r}", pull=record
    )


@app.command("import")
def import_export(
    file: Annotated[Path, typer.Argument(help="A Label Studio full-JSON export file.")],
    exports: ExportsOpt = EXPORTS_DIR,
    gold: GoldOpt = None,
) -> None:
    """Bring an export file into labels/exports/ (no server), then derive gold."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read ({exc.strerror or exc})")
    _derive(exports, gold, (file.stem, data), file)


@app.command("gold")
def gold_(
    exports: ExportsOpt = EXPORTS_DIR,
    gold: GoldOpt = None,
) -> None:
    """Rebuild the gold set and agreement report from the stored exports."""
    _derive(exports, gold)


@app.command()
def suggest(
    project: ProjectOpt = DEFAULT_PROJECT,
    model: Annotated[
        Path | None,
        typer.Option(help=f"Model for scores and pre-annotations (default {DEFAULT_MODEL_DIR}/)."),
    ] = None,
    sentences: SentencesOpt = SENTENCES_PATH,
    k: Annotated[int, typer.Option("--k", min=1, help="How many sentences to choose.")] = 20,
    strategy: Annotated[
        str, typer.Option(help="uncertainty (with diversity) | diversity | random.")
    ] = "uncertainty",
    gold: GoldInOpt = None,
    seed: Annotated[int, typer.Option(help="Seed for ties and for random.")] = 0,
) -> None:
    """Choose the K sentences to label next; push them in that order, with pre-annotations."""
    from stancelab.active.assist import check_gold
    from stancelab.active.assist import suggest as choose_and_push
    from stancelab.active.selection import STRATEGIES
    from stancelab.annotation.credentials import load_credentials
    from stancelab.annotation.tasks import ModelPredictor
    from stancelab.prediction.api import default_model_dir

    if strategy not in STRATEGIES:
        fail(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    directory = model or default_model_dir()
    with one_line_errors():
        check_gold(gold)  # before the model loads
        # Without --model a missing default model only matters to the uncertainty strategy.
        use_model = model is not None or strategy == "uncertainty" or directory.exists()
        predictor = ModelPredictor(directory) if use_model else None
        result = choose_and_push(
            load_credentials(),
            project,
            sentences,
            predictor=predictor,
            k=k,
            strategy=strategy,
            gold_path=gold or (GOLD_PATH if GOLD_PATH.exists() else None),  # may be missing
            seed=seed,
        )
    for line in result.lines():
        typer.echo(line)
    if predictor is None:
        typer.echo(f"note: no model at {directory}: pushed without pre-annotations", err=True)
    for note in result.push.notes:
        typer.echo(f"note: {note}", err=True)


@app.command()
def review(
    project: ProjectOpt = DEFAULT_PROJECT,
    review_project: Annotated[
        str | None, typer.Option(help="Review project title (default: <project>-review).")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(help="An evaluation's predictions.jsonl: its out-of-fold predictions."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Run directory: cross-validate its recorded config.yaml on gold."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Config to cross-validate (default configs/baseline.yaml).")
    ] = None,
    gold: GoldInOpt = None,
    sentences: Annotated[
        Path, typer.Option(help="Sentences JSONL, for each sentence's context.")
    ] = SENTENCES_PATH,
    k: Annotated[int, typer.Option("--k", min=1, help="Most sentences to push.")] = 50,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
) -> None:
    """Push the gold sentences most likely mislabelled to a review project, ranked."""
    from stancelab.active.assist import load_sources
    from stancelab.active.assist import review as push_review
    from stancelab.annotation.client import api_errors, connect
    from stancelab.annotation.credentials import load_credentials
    from stancelab.data.labelled import load_labelled

    if sum(x is not None for x in (predictions, model, config)) > 1:
        fail("use one of --predictions, --model and --config")
    if model is not None:
        config = model / "config.yaml"
        if not config.exists():
            fail(f"{model}: no config.yaml (not a run directory from `training.train`?)")
    with one_line_errors():
        creds = load_credentials()
        with api_errors(creds, "checking the server"):  # before minutes of cross-validation
            connect(creds)
        data = load_labelled(gold or GOLD_PATH, default_source="corpus")
        sources, notes = load_sources(
            data,
            predictions=predictions,
            config_path=config or Path("configs/baseline.yaml"),
            folds=folds,
            seed=seed,
            log=lambda m: typer.echo(m, err=True),
        )
        result = push_review(
            creds,
            review_project or f"{project}-review",
            data,
            sources,
            k=k,
            sentences_path=sentences,
        )
    for line in result.lines():
        typer.echo(line)
    for note in [*notes, *result.push.notes]:
        typer.echo(f"note: {note}", err=True)

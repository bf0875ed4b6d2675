"""``stancelab predict``: label sentences, articles or files with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stancelab.cli._util import fail
from stancelab.errors import StancelabError
from stancelab.paths import DEFAULT_MODEL_DIR


def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Sentences to label.")] = None,
    input: Annotated[
        Path | None, typer.Option("--input", "-i", help="A .txt, .jsonl or .csv file to label.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSONL output for --input.")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help=f"Run directory (default: {DEFAULT_MODEL_DIR}/).")
    ] = None,
    documents: Annotated[
        bool, typer.Option(help="Treat each text as an article: split it into sentences.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted --input run.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per chunk.")] = 256,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Transformer precision: fp32 (default; PyTorch's labels and scores) or int8 "
            "(faster, but it changes labels, far more often with the mpnet default than with "
            "MiniLM: for triage, not for figures you report, and not with the mpnet default; "
            "README, 'Measured figures')."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    engine: Annotated[
        str, typer.Option(help="local, or ray: --input on Ray Data (pip install -e '.\\[ray]').")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Ray workers (default: one per CPU of the cluster).")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            metavar="FIELD[,FIELD...]",
            help="With --input: carry only these of a record's other fields (JSON keys, CSV "
            "columns) as each row's meta (default: all of them).",
        ),
    ] = None,
    no_meta: Annotated[
        bool, typer.Option("--no-meta", help="With --input: carry none of them (no meta).")
    ] = False,
) -> None:
    """Label new text with stances and calibrated scores (sentences, articles or files)."""
    import json

    from stancelab.prediction.api import predict as predict_texts
    from stancelab.prediction.api import predict_document, resolve_model

    if bool(texts) == bool(input):
        fail("give either sentences to label or --input FILE (with --output FILE.jsonl)")
    if texts and "-" in texts:  # the shell's "standard input" was labelled as the text "-"
        from stancelab.corpus.readers import not_standard_input

        refused = not_standard_input(
            "give the sentences here, or save them to a file and give --input FILE (a .txt is "
            "one sentence per line)"
        )
        fail(str(refused))
    if texts and (output is not None or resume or overwrite):
        fail(
            "--output, --resume and --overwrite are for --input FILE; to keep the labels of "
            "sentences given here, use --json > FILE"
        )
    if texts and (meta is not None or no_meta):
        fail("--meta and --no-meta are for --input FILE: they choose the fields its rows carry")
    if meta is not None and no_meta:
        fail("give either --meta FIELD,... (those fields) or --no-meta (none), not both")
    try:  # a bad field name is refused before the model loads
        from stancelab.prediction.rows import meta_fields

        meta = meta_fields([] if no_meta else meta)
    except StancelabError as exc:
        fail(str(exc))
    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, got {engine!r}")
    if engine == "ray":
        if input is None or output is None:
            fail("--engine ray needs --input PATH and --output OUT (a folder it creates)")
        if resume:
            fail("--resume is for the local engine; with --engine ray, rerun with --overwrite")
        predict_on_ray(
            model,
            input,
            output,
            documents=documents,
            overwrite=overwrite,
            batch_size=batch_size,
            workers=workers,
            ray_address=ray_address,
            precision=precision,
            meta=meta,
        )
        return
    try:
        loaded = resolve_model(model, precision)
        if input is not None:
            from stancelab.prediction.stream import predict_file

            if output is None:
                fail("--input needs --output FILE.jsonl")
            summary = predict_file(
                loaded,
                input,
                output,
                documents=documents,
                resume=resume,
                overwrite=overwrite,
                chunk_size=batch_size,
                progress=progress,
                meta=meta,
            )
            typer.echo(str(summary))
            return
        if documents:
            per_text = [predict_document(text, loaded) for text in texts]
            report_dropped(per_text)
            results = [r for found in per_text for r in found]
        else:
            results = predict_texts(list(texts), loaded)
    except (TypeError, ValueError, StancelabError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted: rerun with --resume to continue", err=True)
        raise typer.Exit(130) from None
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        typer.echo(format_table(results))


def report_dropped(per_text) -> None:
    """On stderr, each line that ``--documents`` dropped from a text given here as page
    furniture, and each text left with no sentence: the table and JSON show sentences only."""
    from stancelab.corpus.text import preview

    for number, found in enumerate(per_text, start=1):
        for line in found.dropped:
            typer.echo(f"text {number}: dropped ({line.reason}): {preview(line.text)}", err=True)
        if not found:
            typer.echo(f"text {number}: no sentence left to label (every line dropped)", err=True)


def predict_on_ray(model, input, output, **options) -> None:
    """``predict --engine ray``: ``stancelab.prediction.cluster`` on Ray Data."""
    try:
        from stancelab.prediction import cluster

        summary = cluster.predict_files(model, input, output, **options)
    except (TypeError, ValueError, StancelabError) as exc:
        fail(str(exc))
    typer.echo(str(summary))


def format_table(results) -> str:
    """A readable table: labels, one score column per label, the text."""
    from stancelab.corpus.text import preview
    from stancelab.labels import LABELS, display

    width = max([len("labels")] + [len(display(r.labels)) for r in results]) + 2
    header = f"{'labels':<{width}}" + " ".join(f"{n[:12]:>12}" for n in LABELS) + "  text"
    lines = [header, "-" * len(header)]
    for r in results:
        text = preview(r.text, 70)
        text = f"(truncated) {text}" if r.truncated else text
        text = f"(foreign script) {text}" if r.foreign_script else text
        scores = " ".join(f"{r.scores[n]:>12.2f}" for n in LABELS)
        lines.append(f"{display(r.labels):<{width}}{scores}  {text}")
    return "\n".join(lines)

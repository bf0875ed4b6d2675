"""``stancelab cache ...``: what the transformer keeps in the state directory.

    stancelab cache info  [--keep DIR ...]
    stancelab cache clear [--onnx] [--layers] [--encoders] [--keep DIR ...] [--dry-run]

Every item is rebuilt on demand, offline (``stancelab.models.transformer.caches``). ``clear``
with no area named clears the two that grow, ONNX exports and the layer cache; it keeps the
exports of the runs found under ``--keep`` (default ``runs/``) and of predict's default model
(``$STANCELAB_MODEL``, else ``runs/transformer``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from stancelab.paths import RUNS_DIR

app = typer.Typer(
    help="Show or clear the caches in the state directory (ONNX exports, layer cache, encoders).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Keep = Annotated[
    list[Path] | None,
    typer.Option(
        "--keep",
        help="Folder of runs whose ONNX exports are in use and kept (repeatable; "
        "default runs/, if there is one).",
    ),
]


def _keep(given: list[Path] | None) -> list[Path]:
    """The folders of runs in use: those given (which must be folders), else runs/; and
    predict's default model (``$STANCELAB_MODEL``, else runs/transformer), always."""
    from stancelab.cli._util import fail
    from stancelab.prediction.api import default_model_dir

    for path in given or []:
        if not path.is_dir():
            fail(f"--keep {path}: not a folder (name the folder that holds your runs)")
    keep = list(given) if given else [RUNS_DIR]
    model = default_model_dir()
    if model.is_dir():
        keep.append(model)
    if not any(path.is_dir() for path in keep):
        typer.echo(
            f"note: no {RUNS_DIR}/ folder here, so no export is marked in use "
            "(run this where your runs/ is, or name their folders with --keep)",
            err=True,
        )
    return keep


def _line(item) -> str:
    from stancelab.models.transformer.caches import human

    day = time.strftime("%Y-%m-%d", time.localtime(item.modified)) if item.modified else "-"
    used = f"  used by {', '.join(item.used_by)}" if item.used_by else ""
    return f"{item.area:<9} {human(item.bytes):>9}  {day}  {item.name}{used}"


@app.command()
def info(keep: Keep = None) -> None:
    """List every cached item with its size, last change and the runs that use it."""
    from stancelab.cli._util import one_line_errors
    from stancelab.models.transformer.caches import human, items
    from stancelab.paths import state_dir

    with one_line_errors():
        found = items(_keep(keep))
    typer.echo(f"state directory: {state_dir()}")
    for item in found:
        typer.echo(_line(item))
    total = sum(i.bytes for i in found)
    typer.echo(f"{len(found)} item(s), {human(total)}")


@app.command()
def clear(
    onnx: Annotated[bool, typer.Option("--onnx", help="ONNX exports not in use.")] = False,
    layers: Annotated[bool, typer.Option("--layers", help="The layer cache.")] = False,
    encoders: Annotated[
        bool, typer.Option("--encoders", help="Unpacked encoders (unpacked again on use).")
    ] = False,
    keep: Keep = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing.")
    ] = False,
) -> None:
    """Remove cached items (all rebuilt on demand); by default ONNX exports and layer cache."""
    from stancelab.cli._util import one_line_errors
    from stancelab.models.transformer.caches import CANNOT, human
    from stancelab.models.transformer.caches import clear as clear_items

    areas = [a for a, on in (("onnx", onnx), ("layers", layers), ("encoders", encoders)) if on]
    with one_line_errors():
        removed, kept = clear_items(areas or ["onnx", "layers"], _keep(keep), dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        typer.echo(f"{verb}: {_line(item)}")
    for item, why in kept:
        typer.echo(f"kept: {_line(item)} ({why})")
    typer.echo(f"{verb} {len(removed)} item(s), {human(sum(i.bytes for i in removed))}")
    if any(why.startswith(CANNOT) for _, why in kept):
        raise typer.Exit(1)

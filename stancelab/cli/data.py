"""``stancelab data ...``: the labelled data in other formats.

    stancelab data export [--out DIR] [--gold FILE] [--augment-dir DIR]

``export`` writes the gold and augmentation sets as a Hugging Face ``DatasetDict``
(``stancelab.data.hub``): ``arrow/`` (``save_to_disk``), Parquet files and a dataset card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stancelab.cli._util import one_line_errors
from stancelab.paths import AUGMENT_DIR, GOLD_PATH, HF_EXPORT_DIR

app = typer.Typer(
    help="The labelled data in other formats: export it as a Hugging Face dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def export(
    out: Annotated[
        Path, typer.Option(help="Output folder (replaced if a previous export).")
    ] = HF_EXPORT_DIR,
    gold: Annotated[Path, typer.Option(help="Gold set JSONL.")] = GOLD_PATH,
    augment_dir: Annotated[Path, typer.Option(help="Augmentation folder (*.jsonl).")] = AUGMENT_DIR,
) -> None:
    """Write gold + augmentation as a DatasetDict: save_to_disk, Parquet and a dataset card."""
    from stancelab.data.hub import export as write_export

    with one_line_errors():
        dataset = write_export(out, gold, augment_dir)
    splits = ", ".join(f"{name} {len(part)}" for name, part in dataset.items())
    typer.echo(f"{splits} sentences -> {out}/ (arrow/, data/*.parquet, README.md)")
    typer.echo(f'load with datasets.load_dataset("{out}") or stancelab.data.load_export("{out}")')

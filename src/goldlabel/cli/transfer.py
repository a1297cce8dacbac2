"""``goldlabel import`` and ``goldlabel export``: items in, labels out, streamed by the services."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from goldlabel.cli.progress import Progress, reading
from goldlabel.cli.root import CliState, echo_json, fail, pass_state
from goldlabel.domain.errors import GoldlabelError

FORMATS = ["jsonl", "csv", "parquet", "json"]
# Kept literal so that `goldlabel --help` does not import pyarrow; tests check them against
# formats.IMPORT_FORMATS and formats.EXPORT_FORMATS.
EXPORT_FORMATS = [*FORMATS, "coco", "yolo", "voc", "conll", "spacy", "hf"]
# Other tools' files (services.imports.TOOL_FORMATS): a Label Studio export; COCO / YOLO boxes.
TOOL_FORMATS = ["labelstudio", "coco", "yolo"]
# How many error lines the terminal shows; the report (and --json) carries the service's first 100.
SHOWN_ERRORS = 20


def _report_dict(report: Any) -> dict[str, Any]:
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)


def _echo_errors(report: dict[str, Any]) -> None:
    errors = report.get("errors") or []
    for err in errors[:SHOWN_ERRORS]:
        where = f"line {err['line']}: " if err.get("line") is not None else ""
        path = ".".join(str(p) for p in err.get("loc", [])) or "(row)"
        click.echo(f"  {where}{path}: {err['message']} [{err['code']}]", err=True)
    total = report.get("error_count", len(errors))
    if total > min(len(errors), SHOWN_ERRORS):
        click.echo(f"  ... {total - min(len(errors), SHOWN_ERRORS)} more error(s); --json shows the "
                   f"first {len(errors)}", err=True)


@click.command("import")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.argument("path", metavar="FILE|DIR|ZIP", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice([*FORMATS, *TOOL_FORMATS]), default=None,
              help="File format [default: from the file extension; a .json file holding a Label Studio "
                   "export or a COCO file is read as one].")
@click.option("--as", "target", type=click.Choice(["predictions", "gold"]), default=None,
              help="coco / yolo: put the boxes on the items as predictions [default] or gold.")
@click.option("--question", default=None, metavar="NAME",
              help="coco / yolo: the boxes question [default: the first boxes question].")
@click.option("--model-version", default=None, metavar="NAME",
              help="coco / yolo predictions: their model version [default: the format name].")
@click.option("--id-field", default=None, metavar="FIELD",
              help="labelstudio: the task data field holding the external_id [default: the task id].")
@click.option("--ls-media-root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="labelstudio: Label Studio's media folder; files uploaded into Label Studio "
                                  "(/data/upload/...) are copied from it into the media store.")
@click.option("--sidecar", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Media import: a JSONL / CSV file with a row per media file (column 'file').")
@click.option("--on-conflict", type=click.Choice(["skip", "update"]), default="skip", show_default=True,
              help="What to do with an external_id the project already has.")
@click.option("--partial", is_flag=True,
              help="Keep the valid rows and report the bad ones (default: all or nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_state
def import_command(state: CliState, project_id: int, path: Path, fmt: str | None, target: str | None,
                   question: str | None, model_version: str | None, id_field: str | None,
                   ls_media_root: Path | None, sidecar: Path | None,
                   on_conflict: str, partial: bool, as_json: bool, quiet: bool) -> None:
    """Import the items of FILE (JSONL, CSV, Parquet or a JSON array) into PROJECT, or the media
    files of a folder DIR or an archive ZIP (one item per file; docs/import-export.md#media).

    From other tools (docs/import-export.md#from-other-tools): a Label Studio JSON export
    (items, answers, predictions, gold), or COCO / YOLO boxes (--format yolo for a folder or zip)
    onto the project's items --as predictions or gold.

    Idempotent by external_id. All or nothing unless --partial: one bad row rejects the file,
    and the report lists every problem with its line, field and code. Exits 1 when rejected.
    """
    from goldlabel.services import imports as import_service

    ctx = state.context()
    is_media = fmt is None and (path.is_dir() or path.suffix.lower() == ".zip")
    if sidecar is not None and not is_media:
        fail("--sidecar goes with a media import (a folder or a .zip)")
    try:
        if is_media:
            from goldlabel.services import media as media_service

            report = _report_dict(media_service.import_media(
                ctx, None, project_id, path, sidecar=sidecar, on_conflict=on_conflict, partial=partial
            ))
        elif fmt == "yolo":  # a folder or a zip of label files
            report = _report_dict(import_service.import_file(
                ctx, None, project_id, path, fmt=fmt, partial=partial, target=target, question=question,
                model_version=model_version,
            ))
        else:
            # Progress in bytes of the file: the rows are checked and written as they are read.
            with path.open("rb", buffering=0) as raw, \
                    Progress(f"import {path.name}", path.stat().st_size, "B", quiet=quiet) as progress:
                report = _report_dict(import_service.import_file(
                    ctx, None, project_id, reading(raw, progress), fmt=fmt, on_conflict=on_conflict,
                    partial=partial, filename=path.name, target=target, question=question,
                    model_version=model_version, id_field=id_field, media_root=ls_media_root,
                ))
    except GoldlabelError as exc:
        report = exc.extra.get("report")
        if report is None:
            raise
        if as_json:
            echo_json(report)
        click.echo(f"error: {exc.detail} [{exc.code}]", err=True)
        _echo_errors(report)
        sys.exit(1)
    if as_json:
        echo_json(report)
    else:
        click.echo(
            f"{path.name}: {report['rows']} row(s): {report['created']} created, "
            f"{report['updated']} updated, {report['skipped']} skipped"
            + (f", {report['answers']} answer(s)" if report.get("answers") else "")
            + (f", {report['error_count']} rejected" if report.get("error_count") else "")
        )
    if report.get("error_count"):
        _echo_errors(report)


@contextlib.contextmanager
def _atomic_output(output: str):
    """The output file appears only once complete: a failed export leaves no half-written file."""
    if output == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    if target.is_dir():
        fail(f"--output {output} is a directory", 2)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@click.command("export")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="Output format; coco, yolo, voc, conll, spacy and hf write a zip (docs/import-export.md).")
@click.option("--output", "-o", required=True, metavar="FILE", help="Output file ('-' for standard output).")
@click.option("--status", default=None, metavar="STATUS",
              help="Only items in this status, e.g. final [default: every item].")
@click.option("--include-gold", is_flag=True, help="Add each gold item's known answer.")
@click.option("--include-predictions", is_flag=True, help="Add the model predictions of each item.")
@click.option("--annotator-names", is_flag=True,
              help="Name annotators by username (default: stable pseudonyms).")
@click.option("--question", default=None, metavar="NAME",
              help="Training formats: the question to write [default: the first the format can hold].")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None,
              help="Training formats: only labels at least this confident.")
@click.option("--snapshot", default=None, metavar="NAME",
              help="Also freeze this export under NAME: the server keeps it, re-downloadable later.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_state
def export_command(state: CliState, project_id: int, fmt: str, output: str, status: str | None,
                   include_gold: bool, include_predictions: bool, annotator_names: bool,
                   question: str | None, min_confidence: float | None, snapshot: str | None,
                   quiet: bool) -> None:
    """Export PROJECT: per item its final answer(s), confidence, status and every raw answer.

    Streamed: memory stays flat whatever the project size. The file appears only once complete.
    """
    from goldlabel.services import exports as export_service

    ctx = state.context()
    if snapshot is not None:
        from goldlabel.services import snapshots as snapshot_service

        row = snapshot_service.create_snapshot(
            ctx, None, project_id, snapshot, fmt, status=status, include_gold=include_gold,
            include_predictions=include_predictions, pseudonymous=not annotator_names,
            question=question, min_confidence=min_confidence,
        )
        with _atomic_output(output) as stream:
            for chunk in ctx.media.read(row["object_key"]):
                stream.write(chunk)
        count = row["item_count"]
        click.echo(f"snapshot {row['id']} {snapshot!r}: sha256 {row['sha256']}", err=True)
    else:
        job = export_service.prepare_export(
            ctx, None, project_id, fmt, status=status, include_gold=include_gold,
            include_predictions=include_predictions, pseudonymous=not annotator_names,
            question=question, min_confidence=min_confidence,
        )
        export_service.record_export(ctx, None, job)
        # The total is counted before the export's own snapshot: a bar's estimate, not its content.
        total = None if quiet else job.item_count()
        with _atomic_output(output) as stream, \
                Progress(f"export project {project_id}", total, "items", quiet=quiet) as progress:
            count = job.write_to(stream, progress.update)
    if output != "-":
        click.echo(f"exported project {project_id} to {output}: {count} item(s)", err=True)

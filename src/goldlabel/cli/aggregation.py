"""``goldlabel aggregate``: the quality library on a CSV file, with no server and no database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from goldlabel.cli.progress import Steps
from goldlabel.cli.root import echo_json, fail

READABLE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("answers", metavar="ANSWERS.csv", type=READABLE_FILE)
@click.option("--method", default=None, metavar="NAME",
              help="Aggregation method: mv, wawa, ds, onecoin, glad, mace, bcc, ebcc, cds, robust "
              "[default: robust].")
@click.option("--gold", type=READABLE_FILE, default=None, metavar="GOLD.csv",
              help="Known answers (item, label) to anchor annotator skill and report accuracy.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="OUT.csv", help="Where to write one aggregated label per item.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def aggregate(answers: Path, method: str | None, gold: Path | None, output: Path, quiet: bool) -> None:
    """Aggregate crowd answers (long format: item, annotator, label) into one label per item.

    A thin wrapper over goldlabel.quality.aggregate_file; needs no database.
    """
    # Imported here: the quality engine pulls in scipy, which other commands do not need.
    from goldlabel.quality import METHODS, aggregate_file

    if method is not None and method.lower() not in METHODS:
        fail(f"unknown method {method!r}; choose one of: {', '.join(sorted(METHODS))} [unknown_method]", 2)
    steps = Steps(quiet=quiet)
    try:
        result = aggregate_file(answers, output, method=method, gold_csv=gold, on_step=steps.start)
        steps.finish()
    except (ValueError, KeyError) as exc:
        # The quality library stands alone and reports bad input as ValueError, not GoldlabelError.
        fail(f"{exc} [bad_answers]")
    _echo_summary(result, output)


def _echo_summary(result: Any, output: Path) -> None:
    if isinstance(result, dict) and {"method", "items", "answers", "annotators"} <= result.keys():
        click.echo(f"{result['method']}: {result['answers']} answers by {result['annotators']} annotators "
                   f"on {result['items']} items -> {output}")
    elif isinstance(result, dict):
        echo_json(result)
    else:
        click.echo(f"wrote {output}")

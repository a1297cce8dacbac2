"""``goldlabel models``: train a project's model, show its status and versions, list likely label errors."""

from __future__ import annotations

import click

from goldlabel.cli.root import CliState, echo_json, echo_table, pass_state
from goldlabel.services import models as model_service


@click.group()
def models() -> None:
    """The project model: train, status, label-error audit (docs/models.md)."""


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@models.command("train")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
@pass_state
def train(state: CliState, project_id: int, as_json: bool) -> None:
    """Embed what PROJECT's labeled items need and train a new model version now."""
    out = model_service.request_training(state.context(), None, project_id)
    if as_json:
        echo_json(out)
        return
    if out["queued"]:
        click.echo(f"project {project_id}: another process is working on its model; it trains next")
        return
    trained = out["summary"].get("trained")
    if trained is None:
        click.echo(f"project {project_id}: not trained: {out['summary'].get('not_trained')}")
        return
    click.echo(f"project {project_id}: version {trained['version']} (id {trained['id']}) "
               f"on {trained['labels']} labels: "
               f"held-out accuracy {_fmt(trained['accuracy'])}, ECE {_fmt(trained['ece'])}, "
               f"auto-label threshold {_fmt(trained['threshold'])}")


@models.command("status")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text and a table.")
@pass_state
def status(state: CliState, project_id: int, as_json: bool) -> None:
    """PROJECT's model: embeddings, auto-labeling and its audits, last error, versions."""
    out = model_service.status(state.context(), None, project_id)
    if as_json:
        echo_json(out)
        return
    auto = out["auto_label"]
    click.echo(f"question: {out['question']}  labels: {out['labels']}  embedded: {out['embeddings']['embedded']}"
               f"  waiting: {out['embeddings']['waiting']}")
    click.echo(f"auto-labeling: {'on' if auto['on'] else 'off'}  auto-labeled: {auto['auto_labeled']}  "
               f"audits: {auto['audited']}/{auto['audits']}  audit accuracy: {_fmt(auto['audit_accuracy'])}"
               + (f"  (off: {auto['off_reason']})" if auto["off_reason"] else ""))
    if out["last_error"]:
        click.echo(f"last error: {out['last_error']}")
    echo_table([{"id": v["id"], "version": v["version"], "status": v["status"], "labels": v["labels"],
                 "accuracy": _fmt((v["metrics"] or {}).get("accuracy")), "ece": _fmt((v["metrics"] or {}).get("ece")),
                 "threshold": _fmt((v["threshold"] or {}).get("threshold"))} for v in out["versions"]],
               ["id", "version", "status", "labels", "accuracy", "ece", "threshold"])


@models.command("audit")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.option("--limit", type=click.IntRange(1, model_service.ISSUES_LIMIT_MAX), default=50, show_default=True,
              help="Show at most this many, most suspicious first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def audit(state: CliState, project_id: int, limit: int, as_json: bool) -> None:
    """Final labels of PROJECT the newest model calls likely wrong, ranked."""
    rows = model_service.label_audit(state.context(), None, project_id, limit)
    if as_json:
        echo_json(rows)
        return
    echo_table([{**r, "self_confidence": _fmt(r["self_confidence"])} for r in rows],
               ["rank", "item_id", "external_id", "question", "given", "suggested", "self_confidence"])

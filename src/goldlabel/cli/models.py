"""``goldlabel models``: train a project's model, show its status and versions, list likely label errors."""

from __future__ import annotations

import time

import click

from goldlabel.cli.root import CliState, echo_json, echo_table, pass_state
from goldlabel.services import model_scaleout
from goldlabel.services import models as model_service


@click.group()
def models() -> None:
    """The project model: train, status, label-error audit, whole-project passes (docs/models.md)."""


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
    if out["settings"]["external_model"]:
        click.echo(f"external model: {out['settings']['external_model']} ({out['settings']['external_role']})")
    if out["last_error"]:
        click.echo(f"last error: {out['last_error']}")
    echo_table([{"id": v["id"], "version": v["version"], "status": v["status"], "labels": v["labels"],
                 "accuracy": _fmt((v["metrics"] or {}).get("accuracy")), "ece": _fmt((v["metrics"] or {}).get("ece")),
                 "threshold": _fmt((v["threshold"] or {}).get("threshold"))} for v in out["versions"]],
               ["id", "version", "status", "labels", "accuracy", "ece", "threshold"])


def _ray_option(what: str):
    return click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
                        help=f"Run {what} on Ray (pip install 'goldlabel[ray]'): alone, a local Ray instance "
                             "(or the cluster RAY_ADDRESS names); with an ADDRESS (auto, ray://host:10001), that "
                             "cluster. Without it: in this process.")


def _wait_option(f):
    return click.option("--wait", type=click.FloatRange(0, 3600), default=60.0, show_default=True, metavar="SECONDS",
                        help="While another process (the server's model worker) works on the project's model, "
                             "wait up to this long for it.")(f)


def _run_pass(state: CliState, project_id: int, name: str, ray_address: str | None, wait: float) -> dict:
    executor = model_scaleout.executor_for(ray_address)
    deadline = time.monotonic() + wait
    try:
        while True:
            out = model_scaleout.run_pass(state.context(), project_id, name, executor)
            if not out.get("busy") or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
    finally:
        shutdown = getattr(executor, "shutdown", None)
        if shutdown is not None:
            shutdown()
    if out.get("busy"):
        raise click.ClickException(f"project {project_id}: another process is working on its model; try again")
    return out


def _pass_line(out: dict) -> str:
    details = "  ".join(f"{k}: {v}" for k, v in out.items() if k not in ("project_id", "pass"))
    return f"project {out['project_id']}: {out['pass']} pass  {details}"


@models.command("embed")
@click.argument("project_id", metavar="PROJECT", type=int)
@_ray_option("the embedding pass")
@_wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def embed(state: CliState, project_id: int, ray_address: str | None, wait: float, as_json: bool) -> None:
    """Embed every item of PROJECT that has no vector yet, in batches (texts already embedded
    anywhere are reused)."""
    out = _run_pass(state, project_id, "embed", ray_address, wait)
    if as_json:
        echo_json(out)
    else:
        click.echo(_pass_line(out))


@models.command("predict")
@click.argument("project_id", metavar="PROJECT", type=int)
@_ray_option("the prediction pass")
@_wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def predict(state: CliState, project_id: int, ray_address: str | None, wait: float, as_json: bool) -> None:
    """Predict every embedded item of PROJECT that has no prediction of the current model
    version yet (pre-labels, the model's vote, auto-label candidates)."""
    out = _run_pass(state, project_id, "predict", ray_address, wait)
    if as_json:
        echo_json(out)
    else:
        click.echo(_pass_line(out))


@models.command("audit")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.option("--limit", type=click.IntRange(1, model_service.ISSUES_LIMIT_MAX), default=50, show_default=True,
              help="Show at most this many, most suspicious first.")
@click.option("--run", "run_now", is_flag=True,
              help="Run the label-error audit pass now (out-of-fold probabilities of every human final label) "
                   "before listing; the background worker runs it at each training.")
@_ray_option("the audit pass (implies --run)")
@_wait_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def audit(state: CliState, project_id: int, limit: int, run_now: bool, ray_address: str | None, wait: float,
          as_json: bool) -> None:
    """Final labels of PROJECT the newest model calls likely wrong, ranked."""
    if run_now or ray_address is not None:
        out = _run_pass(state, project_id, "audit", ray_address, wait)
        if not as_json:
            click.echo(_pass_line(out))
    rows = model_service.label_audit(state.context(), None, project_id, limit)
    if as_json:
        echo_json(rows)
        return
    echo_table([{**r, "self_confidence": _fmt(r["self_confidence"])} for r in rows],
               ["rank", "item_id", "external_id", "question", "given", "suggested", "self_confidence"])

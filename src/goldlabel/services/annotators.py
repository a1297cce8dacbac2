"""What managers read and set about a project's annotators: each annotator's answers, gold
accuracy, learned skills and standing (active / suspended, set by a manager), and the
project's inter-annotator agreement per choice question."""

from __future__ import annotations

from typing import Any

import numpy as np

from goldlabel import quality
from goldlabel.domain.errors import GoldlabelError, not_found
from goldlabel.quality.agreement import fleiss_kappa, krippendorff_alpha
from goldlabel.services.access import Actor, load_project
from goldlabel.services.consensus import settle_stalled
from goldlabel.services.context import Context
from goldlabel.services.refit import load_choice_answers
from goldlabel.storage import consensus_events
from goldlabel.storage import quality as quality_store
from goldlabel.storage import users as user_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx


def list_annotators(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    """Per annotator: answers, gold accuracy with interval, skill per question, status and evidence."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        rows = quality_store.list_annotator_rows(conn, project_id)
        stats = quality_store.list_stats(conn, project_id)
        skills: dict[int, dict] = {}
        for s in quality_store.list_skills(conn, project_id):
            skills.setdefault(s["annotator_id"], {})[s["question"]] = {
                k: s[k] for k in ("accuracy", "accuracy_low", "accuracy_high", "confusion", "n_answers", "method")
            }
    out = []
    for r in rows:
        st = stats.get(r["annotator_id"], {})
        out.append({
            "annotator_id": r["annotator_id"],
            "username": r["username"],
            "n_answers": r["n_answers"],
            "mean_duration_ms": None if r["mean_duration_ms"] is None else float(r["mean_duration_ms"]),
            "last_answer_at": r["last_answer_at"],
            "n_gold": st.get("n_gold", 0),
            "n_gold_correct": st.get("n_gold_correct", 0),
            "status": st.get("status", "active"),
            "evidence": st.get("evidence"),
            "skills": skills.get(r["annotator_id"], {}),
        })
    return out


def set_annotator_status(ctx: Context, actor: Actor, project_id: int, annotator_id: int, status: str) -> dict:
    if status not in ("active", "suspended"):
        raise GoldlabelError("status must be active or suspended", code="bad_status", status=422)
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "manage")
        stats = quality_store.fetch_stats(conn, project_id, annotator_id)
        if stats is None and user_store.fetch_member_role(conn, project_id, annotator_id) is None:
            raise not_found("annotator")
        evidence = dict((stats or {}).get("evidence") or {})
        evidence["changed_by"] = actor.id
        evidence["reason"] = f"set to {status} by {actor.username}"
        quality_store.upsert_stats(conn, project_id, annotator_id, status=status, evidence=evidence, updated_at=now,
                                   **({} if stats else {"n_gold": 0, "n_gold_correct": 0}))
        settle_stalled(ctx, conn, project, now)
        consensus_events.insert_event(conn, project_id, f"annotator.{status}", {"annotator_id": annotator_id,
                                                                        "by": actor.id}, now)
    return {"annotator_id": annotator_id, "status": status, "evidence": evidence}


def compute_agreement(ctx: Context, actor: Actor, project_id: int) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) and Fleiss' kappa per choice question."""
    with read_tx(ctx.engine) as conn:
        project = load_project(conn, actor, project_id, "review")
        schema = ctx.get_schema(project)
        out = {}
        for q in schema.choice_questions():
            data = load_choice_answers(conn, project_id, q.name, list(q.labels))
            if data is None:
                out[q.name] = {"krippendorff_alpha": None, "fleiss_kappa": None, "answers": 0}
                continue
            answers = quality.encode(*data, label_order=list(q.labels))
            alpha = krippendorff_alpha(answers.item, answers.annotator, answers.label, level="nominal")
            try:
                kappa = fleiss_kappa(answers.item, answers.annotator, answers.label)
            except ValueError:
                kappa = None  # Fleiss needs the same number of answers on every item
            out[q.name] = {
                "krippendorff_alpha": None if alpha is None or np.isnan(alpha) else float(alpha),
                "fleiss_kappa": None if kappa is None or np.isnan(kappa) else float(kappa),
                "answers": int(answers.n_answers),
            }
    return out

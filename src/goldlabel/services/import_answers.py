"""The answers an import brings (a Label Studio export's annotations): the annotator accounts
made for them, the answers themselves, and the consensus and status of the items they answered,
settled in bulk as if each answer had been submitted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldlabel.domain.errors import FieldError
from goldlabel.services.context import Context
from goldlabel.storage import consensus_events
from goldlabel.storage import imports as import_store
from goldlabel.storage.engine import now_ms

if TYPE_CHECKING:  # the report and staging of services/import_rows.py, which calls this module
    from goldlabel.services.import_rows import ImportReport, Staging


def write_answers(conn, project: dict, rows: list[tuple[int, int, dict]], report: ImportReport,
                   staging: Staging, max_errors: int, now: int, answered: dict[int, list[dict]]) -> None:
    """Answers of named annotators (a Label Studio import). Each name is an annotator account
    made for the import: no password, inactive (it cannot sign in or hold a token) and no
    project member (the queue never waits for it), so quality and exports see its answers like
    anyone's. A name taken by a real account is refused. An item keeps one answer per annotator
    (Q2): an answer the item already has from that annotator is left as it is (re-importing the
    same export changes nothing). The item's overlap ceiling grows to hold the answers (Q1)."""
    names = {a["annotator"] for _, _, a in rows} - staging.annotators.keys()
    if names:
        accounts = import_store.fetch_users_by_name(conn, sorted(names))
        for name in sorted(names):
            account = accounts.get(name)
            if account is None:
                staging.annotators[name] = import_store.insert_imported_annotator(conn, name, now)
            elif account["password_hash"] is None and not account["is_active"]:
                staging.annotators[name] = account["id"]
            else:
                staging.annotators[name] = None  # a real account: refused below, once per row
    have = import_store.fetch_answer_pairs(conn, sorted({item_id for _, item_id, _ in rows}))
    new: list[dict] = []
    counts: dict[int, int] = {}
    for line, item_id, a in rows:
        annotator_id = staging.annotators[a["annotator"]]
        if annotator_id is None:
            report.add_errors([FieldError(("answers",), "annotator_name_taken",
                                          f"annotator {a['annotator']!r} is the name of an existing account; "
                                          "import with another annotator prefix", line)], max_errors)
            continue
        if (item_id, annotator_id) in have:
            continue
        have.add((item_id, annotator_id))
        at = a["created_at"] or now
        new.append({"project_id": project["id"], "item_id": item_id, "annotator_id": annotator_id,
                    "value": a["value"], "status": "submitted", "duration_ms": a["duration_ms"],
                    "created_at": at, "updated_at": at, "schema_version": project.get("schema_version")})
        counts[item_id] = counts.get(item_id, 0) + 1
    import_store.insert_answers(conn, new)
    import_store.add_answer_counts(conn, counts, now)
    for answer in new:  # what quality.after_answer reads of an answer: its value and annotator
        answered.setdefault(answer["item_id"], []).append(answer)
    report.answers += len(new)


def settle_answered(ctx: Context, conn, project: dict, answered: dict[int, list[dict]]) -> None:
    """Consensus, status and (on gold items) annotator scores of the items that got answers, as
    if the answers had been submitted one by one: quality.decide_after_answer decides each item
    as a submission would (gold items' answers are scored at once, an answer at a time, to
    score their annotators); the writes go out in bulk, a few statements per batch instead of
    four per item."""
    from goldlabel.services import consensus as quality_service
    from goldlabel.storage import quality as quality_store
    from goldlabel.storage import queue as queue_store

    now = now_ms()
    pid = project["id"]
    choice = ctx.get_schema(project).choice_questions()
    ids = sorted(answered)
    for start in range(0, len(ids), 1000):
        items_by_id = import_store.fetch_items(conn, ids[start:start + 1000])
        consensus_rows: dict[int, list[dict]] = {}
        states, events = [], []
        for item_id, item in items_by_id.items():
            if item["is_gold"]:
                # Imported history, not a submit: nothing to hide in its timing, so scored here
                # (a submitted gold answer is scored after the response, services/gold.py).
                for answer in answered[item_id]:
                    quality_service.score_gold(ctx, conn, project, answer, now)
                continue
            known = None
            if choice:
                item_answers, skills, model = quality_store.fetch_item_answers_with_skills(
                    conn, pid, item_id, choice[0].name)
                known = {choice[0].name: (skills, model)}
            else:
                item_answers = queue_store.fetch_item_answers(conn, item_id)
            status, target, rows = quality_service.decide_after_answer(ctx, conn, project, item, item_answers, now,
                                                                       known)
            consensus_rows[item_id] = rows
            if status != item["status"] or target != item["target_overlap"]:
                states.append({"b_id": item_id, "b_status": status, "b_target": target, "b_now": now})
                if status != item["status"]:
                    events.append({"project_id": pid, "kind": f"item.{status}",
                                   "payload": {"item_id": item_id, "status": status}, "created_at": now})
        import_store.replace_consensus_many(conn, pid, consensus_rows)
        import_store.set_item_states(conn, states)
        if events:
            consensus_events.insert_events(conn, events)

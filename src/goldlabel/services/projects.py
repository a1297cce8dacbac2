"""Projects, their members and their label schema versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldlabel.domain.errors import FieldError, GoldlabelError, forbidden, invalid, not_found
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.domain.label_schema.changes import compare_schemas, find_breaks
from goldlabel.schemas import QualitySettings
from goldlabel.services.access import Actor, fetch_project_role, is_allowed, load_project
from goldlabel.services.consensus import settle_stalled
from goldlabel.services.context import Context
from goldlabel.storage import projects as project_store
from goldlabel.storage import users as user_store
from goldlabel.storage.engine import now_ms, read_tx, write_tx

PUBLIC_FIELDS = (
    "id", "name", "description", "instructions", "label_schema", "overlap_min", "overlap_max",
    "lease_ttl_s", "settings", "created_at", "updated_at", "schema_version",
)


# The settings an annotator's workspace needs; the rest (gold_rate, qualification_gold, the gold_*
# thresholds, suspend_below, ...) would tell an annotator how often and how their work is checked
# against gold, so only reviewers and up see them (issue 17).
ANNOTATOR_SETTINGS = ("show_predictions", "max_leases_per_annotator")


def public_project(row: dict, role: str | None = None, counts: dict[str, int] | None = None) -> dict:
    out = {k: row[k] for k in PUBLIC_FIELDS}
    if role is not None and not is_allowed(role, "review"):
        # annotators (role None: the local operator, who sees everything): name, instructions, schema, lease ttl, and
        # the few settings the workspace reads; nothing about gold or quality checks
        out["settings"] = {k: row["settings"][k] for k in ANNOTATOR_SETTINGS if k in row["settings"]}
    out["role"] = role
    out["counts"] = counts
    return out


def _parse_schema(obj: Any) -> dict:
    return LabelSchema.parse(obj).to_json()


def _check_settings(settings: Mapping[str, Any]) -> dict:
    try:
        return QualitySettings(**settings).model_dump()
    except ValueError as exc:
        raise invalid([FieldError(("settings",), "invalid_settings", str(exc))]) from exc


def _check_overlap(lo: int | None, hi: int | None) -> None:
    if lo is None or hi is None or hi < lo:
        raise invalid([FieldError(("overlap_max",), "overlap_range", "overlap_max must be >= overlap_min")])


def create_project(ctx: Context, actor: Actor | None, name: str, label_schema: Any, *, description: str = "",
                   instructions: str = "", overlap_min: int = 1, overlap_max: int | None = None,
                   lease_ttl_s: int | None = None, settings: Mapping[str, Any] | None = None) -> dict:
    """Create a project; its creator becomes its manager. ``actor=None``: local operator.
    Plain values, as the API's ``ProjectCreate`` or the CLI's options give them; ``settings``:
    QualitySettings fields (the defaults for the rest)."""
    if actor is not None and not actor.can_create_projects:
        raise forbidden("only managers and admins create projects")
    schema = _parse_schema(label_schema)
    overlap_max = overlap_max or overlap_min
    _check_overlap(overlap_min, overlap_max)
    checked_settings = _check_settings(settings or {})
    now = now_ms()
    with write_tx(ctx.engine) as conn:
        row = project_store.insert_project(
            conn,
            name=name,
            description=description,
            instructions=instructions,
            label_schema=schema,
            overlap_min=overlap_min,
            overlap_max=overlap_max,
            lease_ttl_s=lease_ttl_s or ctx.settings.default_lease_ttl_s,
            settings=checked_settings,
            created_by=actor.id if actor else None,
            created_at=now,
            updated_at=now,
        )
        project_store.insert_schema_version(conn, row["id"], 1, schema, actor.id if actor else None, now)
        if actor is not None:
            user_store.upsert_member(conn, row["id"], actor.id, "manager", now)
    return public_project(row, "manager" if actor else None)


def get_project(ctx: Context, actor: Actor, project_id: int) -> dict:
    with read_tx(ctx.engine) as conn:
        row = load_project(conn, actor, project_id, "view")
        role = fetch_project_role(conn, actor, project_id)
        counts = project_store.count_items_by_status(conn, project_id) if is_allowed(role, "review") else None
    return public_project(row, role, counts)


def list_projects(ctx: Context, actor: Actor, after: int, limit: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        rows = project_store.list_projects(conn, after, limit, None if actor.is_admin else actor.id)
        return [public_project(r, fetch_project_role(conn, actor, r["id"])) for r in rows]


def update_project(ctx: Context, actor: Actor, project_id: int, changes: Mapping[str, Any]) -> dict:
    """Apply ``changes`` (the fields given, as the API's ``ProjectUpdate`` holds them; ``settings``
    partial, merged into the current ones)."""
    changes = dict(changes)
    with write_tx(ctx.engine) as conn:
        row = load_project(conn, actor, project_id, "manage")
        now = now_ms()
        if "label_schema" in changes:
            schema = _parse_schema(changes["label_schema"])
            if schema == row["label_schema"]:
                del changes["label_schema"]  # the same schema again: no new version
            else:
                _check_schema_edit(conn, project_id, LabelSchema.parse(row["label_schema"]),
                                   LabelSchema.parse(schema))
                changes["label_schema"] = schema
                changes["schema_version"] = row["schema_version"] + 1
                project_store.insert_schema_version(conn, project_id, changes["schema_version"], schema,
                                                    actor.id, now)
        if "settings" in changes:
            changes["settings"] = _check_settings({**row["settings"], **(changes["settings"] or {})})
        _check_overlap(changes.get("overlap_min", row["overlap_min"]), changes.get("overlap_max", row["overlap_max"]))
        changes = {k: v for k, v in changes.items() if v is not None}
        row = project_store.update_project(conn, project_id, **changes, updated_at=now)
    return public_project(row, fetch_role_or_none(ctx, actor, project_id))


_SOURCES = ("answers", "gold", "predictions")


def _check_schema_edit(conn, project_id: int, old: LabelSchema, new: LabelSchema) -> None:
    """Refuse (409 ``schema_in_use``) a new schema under which stored answers, gold answers or
    predictions would no longer be valid, with the counts per question and label. A safe
    change (questions or labels added, titles changed...) reads nothing."""
    change = compare_schemas(old, new)
    if change.is_safe:
        return
    counts: dict[tuple, dict[str, int]] = {}
    for source in _SOURCES:
        for value in project_store.iter_stored_values(conn, project_id, source):
            for b in find_breaks(change, value):
                key = (b.question, b.reason, b.label, b.code)
                row = counts.setdefault(key, dict.fromkeys(_SOURCES, 0))
                row[source] += 1
    if not counts:
        return
    conflicts = [
        {"question": q, "reason": reason, **({"label": label} if label is not None else {}),
         **({"code": code} if code is not None else {}), **n}
        for (q, reason, label, code), n in sorted(counts.items(), key=lambda kv: tuple(map(str, kv[0])))
    ]
    raise GoldlabelError(
        f"the new label schema would invalidate stored values ({_describe(conflicts)}); "
        "keep the labels and questions in use, or add new ones beside them",
        code="schema_in_use", status=409, extra={"conflicts": conflicts},
    )


def _describe(conflicts: list[dict]) -> str:
    parts = []
    for c in conflicts[:5]:
        what = {"question_removed": f"question {c['question']!r} removed",
                "kind_changed": f"question {c['question']!r} changed kind",
                "label_removed": f"label {c.get('label')!r} of {c['question']!r} removed",
                }.get(c["reason"], f"{c['question']!r}: {c.get('code')}")
        used = ", ".join(f"{c[s]} {s}" for s in _SOURCES if c[s])
        parts.append(f"{what}: used by {used}")
    if len(conflicts) > 5:
        parts.append(f"and {len(conflicts) - 5} more")
    return "; ".join(parts)


def list_schema_versions(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    """Every label schema the project has had, oldest first, with the answers given under each
    (``answers``; version 1 also counts the answers from before versions were recorded)."""
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        versions = project_store.list_schema_versions(conn, project_id)
        counts = project_store.count_answers_by_schema_version(conn, project_id)
    unversioned = counts.pop(None, 0)
    return [{**v, "answers": counts.get(v["version"], 0) + (unversioned if v["version"] == 1 else 0)}
            for v in versions]


def fetch_role_or_none(ctx: Context, actor: Actor, project_id: int) -> str | None:
    with read_tx(ctx.engine) as conn:
        return fetch_project_role(conn, actor, project_id)


def delete_project(ctx: Context, actor: Actor, project_id: int) -> None:
    with write_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        project_store.delete_project(conn, project_id)


def list_members(ctx: Context, actor: Actor, project_id: int) -> list[dict]:
    with read_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "review")
        return user_store.list_members(conn, project_id)


def set_member(ctx: Context, actor: Actor | None, project_id: int, user_id: int, role: str) -> dict:
    with write_tx(ctx.engine) as conn:
        if actor is not None:
            load_project(conn, actor, project_id, "manage")
        elif project_store.fetch_project(conn, project_id) is None:
            raise not_found("project")
        user = user_store.fetch_user(conn, user_id)
        if user is None:
            raise not_found("user")
        if role in ("manager", "admin") and actor is not None and not actor.is_admin and user["role"] not in (
            "manager",
            "admin",
        ):
            raise GoldlabelError(
                "only users with the manager role can manage a project", code="role_too_high", status=422
            )
        user_store.upsert_member(conn, project_id, user_id, role, now_ms())
        _settle_stalled(ctx, conn, project_id)
    return {"user_id": user_id, "username": user["username"], "display_name": user["display_name"], "role": role}


def remove_member(ctx: Context, actor: Actor, project_id: int, user_id: int) -> None:
    with write_tx(ctx.engine) as conn:
        load_project(conn, actor, project_id, "manage")
        if not user_store.delete_member(conn, project_id, user_id):
            raise not_found("member")
        _settle_stalled(ctx, conn, project_id)


def _settle_stalled(ctx: Context, conn: Any, project_id: int) -> None:
    """A change of members may leave open items without an eligible annotator: move them on."""
    settle_stalled(ctx, conn, project_store.fetch_project(conn, project_id), now_ms())


def gold_pool_warnings(ctx: Context, actor: Actor, project_id: int) -> list[str]:
    """What the settings page tells a manager when the gold pool is too small for qualification:
    then annotators all meet the same gold items, and comparing notes gives them away (issue 17),
    or some cannot qualify at all. Estimates from today's members and gold items."""
    with read_tx(ctx.engine) as conn:
        row = load_project(conn, actor, project_id, "manage")
        pool = project_store.count_gold_items(conn, project_id)
        annotators = sum(1 for m in user_store.list_members(conn, project_id) if m["role"] == "annotator")
    need = int(row["settings"].get("qualification_gold") or 0)
    if need <= 0:
        return []
    out = []
    if need >= pool:
        out.append(f"Qualification gold ({need}) is not smaller than the gold pool ({pool} gold items): every "
                   "annotator meets the same gold items while qualifying. Add gold items.")
    slots = pool * row["overlap_max"]
    if annotators * need > slots:
        out.append(f"{annotators} annotators x {need} qualification gold = {annotators * need} gold answers, but "
                   f"{pool} gold items x max overlap {row['overlap_max']} take at most {slots}: some annotators "
                   "cannot qualify. Add gold items or raise max overlap.")
    return out

"""The SDK's two-factor and audit-log methods on the real app (issue 17, item 15)."""

from __future__ import annotations

import csv
import io
import time

import pyotp
import pytest

from goldlabel.client import Conflict, Forbidden, ValidationFailed


def test_totp_enrol_and_turn_off(make_user, connect):
    user = make_user("reviewer")
    gl = connect(user)
    enrolment = gl.start_totp(user.id)
    totp = pyotp.TOTP(enrolment.secret)
    with pytest.raises(ValidationFailed) as exc:
        gl.confirm_totp(user.id, "12345")  # never six digits: always wrong
    assert exc.value.code == "invalid_code"
    now = time.time()
    codes = gl.confirm_totp(user.id, totp.at(now))
    assert len(codes) == 10
    status = gl.get_totp(user.id)
    assert status.enabled and status.recovery_codes_left == 10 and not status.required
    with pytest.raises(Conflict):
        gl.start_totp(user.id)
    assert gl.disable_totp(user.id, codes[0]).enabled is False  # a recovery code will do


def test_audit_pages_and_export(make_user, connect):
    admin = make_user("admin")
    gl = connect(admin)
    for i in range(5):
        gl.create_user(f"sdk{i}")
    made = list(gl.list_audit(actor_id=admin.id, page_size=2))  # follows next_before over 3 pages
    assert [e.action for e in made] == ["user.create"] * 5
    assert [e.id for e in made] == sorted((e.id for e in made), reverse=True)
    out = io.BytesIO()
    assert gl.export_audit(out, "csv", actor_id=admin.id, action="user.create") > 0
    table = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert [int(r["id"]) for r in table] == sorted(e.id for e in made)
    with pytest.raises(Forbidden):
        list(connect(make_user("annotator")).list_audit())

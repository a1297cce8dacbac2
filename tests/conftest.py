"""Shared fixtures: one database per test on SQLite and on PostgreSQL, the real app in process,
and factories (make_user, make_project, api_as, add_items).

PostgreSQL: when GOLDLABEL_TEST_POSTGRES_URL is set (CI sets it) an unreachable server FAILS the
run; otherwise the tests use 127.0.0.1:5432 when a server answers there and skip when none does.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from goldlabel.app import create_app
from goldlabel.client.transport import ASGIAppTransport
from goldlabel.config import Settings
from goldlabel.services import projects as project_service
from goldlabel.services import users as user_service
from goldlabel.services.access import Actor
from goldlabel.services.context import Context
from goldlabel.services.item_refs import decode_item
from goldlabel.storage.engine import create_engine
from goldlabel.storage.migrate import upgrade_database
from goldlabel.storage.tables import metadata

REPO = Path(__file__).resolve().parent.parent
PG_ENV = "GOLDLABEL_TEST_POSTGRES_URL"
PG_LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MINIMAL_SCHEMA = {"questions": [{"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]}


# `make test` runs the suite in two phases (GOLDLABEL_TEST_PHASE): "parallel" on pytest-xdist
# workers, less the tests that measure timing and must not share the machine with another
# worker's load; then "serial", those alone, in one process. Unset (a plain `pytest`), every
# test runs in this one process, as before.
PHASE_ENV = "GOLDLABEL_TEST_PHASE"
SERIAL_FILES = {
    # A security test by timing: gold and normal submits must look alike to a stopwatch, which
    # another worker's load on the 2 cores would blur (issue 17 item 2).
    "tests/api/test_gold_timing.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    phase = os.environ.get(PHASE_ENV)
    if phase not in (None, "", "parallel", "serial"):
        raise pytest.UsageError(f"{PHASE_ENV}={phase!r}: expected 'parallel' or 'serial'")
    if phase:
        keep, drop = [], []
        for item in items:
            path = Path(item.path).resolve()
            serial = path.is_relative_to(REPO) and path.relative_to(REPO).as_posix() in SERIAL_FILES
            (keep if serial == (phase == "serial") else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def datasets_dir() -> Path:
    return Path(os.environ.get("GOLDLABEL_DATASETS", REPO.parent / "shared" / "datasets"))


def _admin_pg_url() -> tuple[str, bool]:
    url = os.environ.get(PG_ENV)
    return (url, True) if url else (PG_LOCAL, False)


def _pg_reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


FULL_COST_HASHER = user_service._hasher  # production's Argon2id: 64 MiB, 3 passes


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2id at 1 MiB and one pass while testing: every user made with a password and every
    password login hashes once, ~0.1 s at full cost on an idle machine and ~1 s on a loaded one.
    A hash carries its parameters, so a server process started by a test checks these cheaply
    too. The tests of hashing itself (its cost, its bound) ask for ``full_cost_password_hashes``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(user_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        user_service._dummy_hash.cache_clear()
        yield
    user_service._dummy_hash.cache_clear()


@pytest.fixture
def full_cost_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Production's Argon2 parameters for this test (and a dummy hash made with them)."""
    monkeypatch.setattr(user_service, "_hasher", FULL_COST_HASHER)
    user_service._dummy_hash.cache_clear()
    yield
    user_service._dummy_hash.cache_clear()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    admin_url, required = _admin_pg_url()
    problem = _pg_reachable(admin_url)
    if problem:
        if required:
            pytest.fail(f"{PG_ENV}={admin_url} is set but PostgreSQL is unreachable: {problem}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({problem}); set {PG_ENV} to require it")
    name = f"goldlabel_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(Settings(database_url=url))
    upgrade_database(engine)
    engine.dispose()
    yield url
    cleaner = _pg_engines.pop(url, None)
    if cleaner is not None:
        cleaner.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would cost ~0.1 s)."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = create_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade_database(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


# Emptying the database between PostgreSQL tests: TRUNCATE costs per table and must take every
# table a foreign key reaches (new files for each table and index: 1-1.5 s a test under load),
# while a test leaves rows in a handful of small tables. So: DELETE from the tables that have
# rows, children first (TRUNCATE only those whose triggers refuse a DELETE: the append-only
# audit log), and restart the sequences that moved; the same end state as
# ``TRUNCATE <every table> RESTART IDENTITY CASCADE``, in milliseconds.
_REFUSING_DELETE = sa.text("""
    SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
    WHERE NOT g.tgisinternal AND g.tgenabled <> 'D' AND (g.tgtype & 8) <> 0
      AND c.relnamespace = current_schema()::regnamespace
""")  # tgtype bit 3: a DELETE trigger
_RESTART_SEQUENCES = sa.text("""
    SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)
    FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL
""")
_pg_engines: dict[str, sa.Engine] = {}


def _truncate_pg(url: str) -> None:
    engine = _pg_engines.get(url)
    if engine is None:
        engine = _pg_engines[url] = sa.create_engine(url, pool_size=1, pool_pre_ping=True)
    tables = metadata.sorted_tables  # parents before children
    non_empty = sa.text(" UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables))
    with engine.begin() as conn:
        used = set(conn.execute(non_empty).scalars())
        guarded = used & set(conn.execute(_REFUSING_DELETE).scalars())
        if guarded:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in sorted(guarded)) + " RESTART IDENTITY"))
        for table in reversed(tables):
            if table.name in used - guarded:
                conn.execute(sa.text(f'DELETE FROM "{table.name}"'))
        conn.execute(_RESTART_SEQUENCES)
        # The text index's watermark (its migration) lives outside the table definitions: with
        # item ids starting again at 1, nothing is indexed.
        conn.execute(sa.text("UPDATE item_text_state SET indexed_through = 0"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "goldlabel.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The media store lives in the test's own folder (PostgreSQL has no file to put it beside).
    # So is the TOTP secrets' key file (services/secret_box.py).
    return Settings(database_url=database_url, secret_key="test-secret", media_dir=str(tmp_path / "media"),
                    totp_key_file=str(tmp_path / "totp.key"))


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = Context.from_settings(settings)
    yield context
    context.close()


@pytest.fixture
def app(ctx: Context):
    return create_app(context=ctx, migrate=False)


_counter = itertools.count(1)


class Factory:
    """Builds users, projects and items through the real services."""

    def __init__(self, ctx: Context, app: Any) -> None:
        self.ctx = ctx
        self.app = app
        self._transport = ASGIAppTransport(app)
        self._tokens: dict[int, str] = {}

    def make_user(self, role: str = "annotator", username: str | None = None, password: str | None = None) -> Actor:
        """A user; token-only unless ``password`` is given (Argon2 hashing costs ~0.1 s a user)."""
        name = username or f"{role}{next(_counter)}"
        row = user_service.create_user(self.ctx, None, name, role, password)
        return Actor(row["id"], row["username"], row["role"])

    def token_for(self, actor: Actor) -> str:
        if actor.id not in self._tokens:
            self._tokens[actor.id] = user_service.create_token(self.ctx, None, actor.id)["token"]
        return self._tokens[actor.id]

    def api_as(self, actor: Actor | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token_for(actor)}"} if actor else {}
        return httpx.Client(transport=self._transport, base_url="http://goldlabel.test", headers=headers)

    def item_id(self, actor: Actor, project_id: int, ref: str) -> int:
        """The item id behind an item reference the annotate loop showed ``actor``
        (services/item_refs.py): what a test compares with the database."""
        return decode_item(self.ctx, project_id, actor.id, ref)

    def item_id_of(self, client: httpx.Client, project_id: int, ref: str) -> int:
        """:meth:`item_id` for the user a client of :meth:`api_as` speaks for."""
        user_id = next(uid for uid, token in self._tokens.items()
                       if client.headers.get("authorization") == f"Bearer {token}")
        return decode_item(self.ctx, project_id, user_id, ref)

    def make_project(
        self,
        manager: Actor | None = None,
        *,
        schema: dict | None = None,
        annotators: list[Actor] = (),
        **spec: Any,
    ) -> dict:
        manager = manager or self.make_user("manager")
        project = project_service.create_project(
            self.ctx, manager, spec.pop("name", "test project"), schema or MINIMAL_SCHEMA, **spec
        )
        for annotator in annotators:
            project_service.set_member(self.ctx, manager, project["id"], annotator.id, annotator.role)
        project["manager"] = manager
        return project

    def add_items(self, project: dict, n: int, *, start: int = 0, **fields: Any) -> list[dict]:
        """Insert items through the API's batch endpoint."""
        rows = [{"external_id": f"x{start + i}", "data": {"text": f"item {start + i}"}, **fields} for i in range(n)]
        client = self.api_as(project["manager"])
        res = client.post(f"/api/v1/projects/{project['id']}/items", json=rows)
        assert res.status_code in (200, 201), res.text
        return rows

    def close(self) -> None:
        self._transport.close()


@pytest.fixture
def factory(ctx: Context, app: Any) -> Iterator[Factory]:
    f = Factory(ctx, app)
    yield f
    f.close()


MEDIA_BUCKET = "goldlabel-media"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=MEDIA_BUCKET)
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

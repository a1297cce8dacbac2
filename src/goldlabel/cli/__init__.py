"""The ``goldlabel`` command line: a thin layer over the services (``goldlabel.services``).

Every command parses its options, calls one service function and prints the result; none of
them touches SQL. The entry point is ``goldlabel.cli:main``; ``python -m goldlabel.cli`` works too.
"""

from __future__ import annotations

from goldlabel.cli import aggregation, db, models, projects, serving, transfer, users
from goldlabel.cli.root import cli, main

for _command in (
    serving.serve,
    serving.demo,
    projects.projects,
    transfer.import_command,
    transfer.export_command,
    users.users,
    db.db,
    aggregation.aggregate,
    models.models,
):
    cli.add_command(_command)

__all__ = ["cli", "main"]

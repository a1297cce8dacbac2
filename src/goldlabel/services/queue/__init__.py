"""The annotate loop: lease the next item, submit, skip, release, edit an earlier answer.

Each call is one short write transaction. The response is built only after COMMIT returns,
so an acknowledged answer is durable (Q4, storage.engine).

The server reaches lease, submit, skip and release through one async use case each
(``lease.lease_next_async``, ``submit.submit_answer_async``, ``lease.skip_item_async``,
``lease.release_item_async``), for browser (session cookie) and API-token clients alike:
api/fastlane.py for the plain case, the routes of api/routes/queue.py for the rest (validation
errors, large bodies). They run on the database's :class:`~goldlabel.storage.backend.Backend`,
which decides where the work runs and makes it durable. Whether the database has the
one-statement lease and the merged submit is the backend's to say (PostgreSQL); the merged submit
decides answers to every question kind, so there the generic submit is only the exception path
(retries, expired or late leases, a write that finds something changed: storage/queue_pg.py says
which invariant is enforced where). No module flag chooses a path. The synchronous functions of
the same names are the same rules for callers off the event loop (the CLI, tests).

The modules, one concern each:

- ``lease``: lease the next item (the one-statement lease and the general path) and hand a lease
  back (skip, release);
- ``submit``: submit an answer: the entry points and the generic path, the lease and item locked;
- ``merged_submit``: PostgreSQL's merged submit, as sans-I/O steps over storage/queue_pg.py's
  statements, and the lease's reading of the item it keeps for them;
- ``answers``: one's own answers: list them, edit one;
- ``views``: what an annotator is shown of an item, a lease, an answer and an item's status;
- ``tokens``: lease tokens (made, hashed) and whose a lease is.

This package's ``__init__`` holds no names: callers import the module of the use case.
"""

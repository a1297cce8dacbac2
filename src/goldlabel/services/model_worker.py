"""The background model worker: a thread of the serving process that, about every
``model_interval_s``, runs one pass (``services.models.process_project``) over each project
with a choice question: embed new items, retrain when due, write pre-labels, auto-label and
check audits. Like the re-fit scheduler it runs at a lower CPU priority than the annotate loop,
and a project one process works on is left alone by the others (``model_state.busy_until``).
"""

from __future__ import annotations

import logging

from goldlabel.services import models as model_service
from goldlabel.services.background import BackgroundLoop
from goldlabel.services.context import Context
from goldlabel.storage import models as model_store
from goldlabel.storage.engine import read_tx

log = logging.getLogger(__name__)

# Nicer than the process, as the re-fit thread is (services/refit.py).
MODEL_NICE = 10


class ModelWorker(BackgroundLoop):
    thread_name = "goldlabel-models"
    failure = "model worker pass failed"
    nice = MODEL_NICE
    join_timeout_s = 30.0

    def __init__(self, ctx: Context, interval_s: float) -> None:
        super().__init__(interval_s)
        self.ctx = ctx

    @classmethod
    def start_if(cls, ctx: Context) -> ModelWorker | None:
        """A started worker, or None when ``model_interval_s`` is 0 (the worker is off)."""
        if ctx.settings.model_interval_s <= 0:
            return None
        worker = cls(ctx, ctx.settings.model_interval_s)
        worker.start()
        return worker

    def run_once(self) -> list[dict]:
        """One pass over every project whose schema has a choice question."""
        with read_tx(self.ctx.engine) as conn:
            projects = model_store.list_projects_for_models(conn)
        done = []
        for project in projects:
            if self.stopping:
                break
            if not self.ctx.get_schema(project).choice_questions():
                continue
            done.append(model_service.process_project(self.ctx, project["id"],
                                                      embed_budget_s=max(1.0, self.interval_s * 2)))
        return done


"""``Client``: the goldlabel REST API (``/api/v1``) from Python, over httpx.

One method per route. Lists are iterators that follow the keyset cursor (``next_after``) page
by page; they fetch the first page when called, so a bad id or a missing permission raises
there, not at the first ``next()``. Objects come back as the wire models of
``goldlabel.schemas``; errors raise ``goldlabel.client.ApiError`` subclasses.

The methods live by resource, one mixin per module (``admin``, ``projects``, ``items``,
``annotate``, ``quality``, ``webhooks``, ``models``, ``files``) over ``_base.ClientBase`` (the
connection, errors, pagination and downloads); ``Client`` composes them.
"""

from __future__ import annotations

from goldlabel.client._base import UNSET, ClientBase
from goldlabel.client.admin import AdminMixin
from goldlabel.client.annotate import AnnotateMixin, Lease, MyAnswer
from goldlabel.client.files import FilesMixin
from goldlabel.client.items import ItemsMixin
from goldlabel.client.models import ModelsMixin
from goldlabel.client.projects import ProjectsMixin
from goldlabel.client.quality import QualityMixin
from goldlabel.client.webhooks import WebhooksMixin

__all__ = ["UNSET", "Client", "Lease", "MyAnswer"]


class Client(
    AdminMixin,
    ProjectsMixin,
    ItemsMixin,
    AnnotateMixin,
    QualityMixin,
    WebhooksMixin,
    ModelsMixin,
    FilesMixin,
    ClientBase,
):
    """A goldlabel API client.

    >>> with Client("http://localhost:8000", token="gl_...") as gl:
    ...     project = gl.create_project("reviews", {"questions": [
    ...         {"name": "sentiment", "kind": "choice", "labels": ["positive", "negative"]}]})

    ``base_url`` is the server's root (``/api/v1`` is added; a URL that already ends with it is
    fine too). ``token`` is an API token (``gl_...``); without one only the error paths work.
    ``transport`` replaces the network, e.g. ``ASGIAppTransport(app)`` to call an app in
    process; the client owns it and closes it on ``close()``. ``timeout`` is in seconds.
    """

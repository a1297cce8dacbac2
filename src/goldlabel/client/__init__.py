"""The goldlabel Python SDK: ``Client`` and the exceptions it raises.

    from goldlabel.client import Client, NotFound

    with Client("http://localhost:8000", token="gl_...") as gl:
        for project in gl.list_projects():
            print(project.id, project.name)

The client depends on httpx and ``goldlabel.schemas`` only, never on the server's code.
"""

from goldlabel.client.client import UNSET, Client, Lease, MyAnswer
from goldlabel.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    ImportFailed,
    NotFound,
    ServerError,
    TooLarge,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "UNSET",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "ImportFailed",
    "Lease",
    "MyAnswer",
    "NotFound",
    "ServerError",
    "TooLarge",
    "Unauthorized",
    "ValidationFailed",
]

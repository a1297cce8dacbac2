"""The plumbing of ``Client``: the httpx connection, errors, pagination, downloads, and the
helpers and argument types the resource modules share. ``goldlabel.client.client`` composes the
resource mixins (``admin``, ``projects``, ``items``, ``annotate``, ``quality``, ``webhooks``,
``models``, ``files``) on top of ``ClientBase``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel

from goldlabel import __version__
from goldlabel.client.errors import ApiError

API_PREFIX = "/api/v1"
ExportFormat = Literal["jsonl", "csv", "parquet", "json", "coco", "yolo", "voc", "conll", "spacy", "hf"]
ImportFormat = Literal["jsonl", "ndjson", "csv", "parquet", "json", "labelstudio", "coco", "yolo"]
ReviewAction = Literal["accept", "reject", "fix"]
OnConflict = Literal["skip", "update"]
M = TypeVar("M", bound=BaseModel)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of update arguments: leave the field as it is (``None`` may be a real value)."""


def _changes(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def _query(**params: Any) -> dict[str, Any]:
    """Query parameters without the unset (None) ones; booleans as the API spells them."""
    return {
        k: (str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
        if v is not None
    }


class ClientBase:
    """The connection and the plumbing every resource's methods share; ``Client`` composes them."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30,
    ) -> None:
        root = base_url.rstrip("/")
        root = root.removesuffix(API_PREFIX)
        headers = {"User-Agent": f"goldlabel-python/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = root
        self._http = httpx.Client(
            base_url=root + API_PREFIX, headers=headers, transport=transport, timeout=timeout
        )

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (and the transport)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError.from_response(response)
        return response

    def _get_model(self, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._request("GET", path, **kwargs).json())

    def _paginate(self, path: str, model: type[M], page_size: int, **params: Any) -> Iterator[M]:
        query = _query(limit=page_size, **params)
        # Fetch the first page now: errors surface at the call, not at the first next().
        first = self._request("GET", path, params=query).json()
        return self._follow(path, model, query, first)

    def _follow(self, path: str, model: type[M], query: dict[str, Any], page: dict) -> Iterator[M]:
        while True:
            for row in page["items"]:
                yield model.model_validate(row)
            after = page.get("next_after")
            if after is None:
                return
            page = self._request("GET", path, params={**query, "after": after}).json()

    def _download(self, path: str, params: dict[str, Any], dest: str | os.PathLike[str] | IO[bytes]) -> int:
        # Accept anything: the body is the file, only an error is JSON.
        with self._http.stream("GET", path, params=params, headers={"Accept": "*/*"}) as res:
            if res.is_error:
                res.read()
                raise ApiError.from_response(res)
            if not isinstance(dest, (str, os.PathLike)):
                return _copy_chunks(res, dest)
            target = Path(dest)
            partial_path = target.with_name(target.name + ".part")
            try:
                with open(partial_path, "wb") as out:
                    written = _copy_chunks(res, out)
                os.replace(partial_path, target)
            finally:
                partial_path.unlink(missing_ok=True)
            return written


def _copy_chunks(response: httpx.Response, out: IO[bytes]) -> int:
    written = 0
    for chunk in response.iter_bytes():
        out.write(chunk)
        written += len(chunk)
    return written

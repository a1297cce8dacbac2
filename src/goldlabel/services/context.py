"""What every service call needs: settings, the engine, and a few caches. Built by create_app."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from goldlabel.config import Settings
from goldlabel.domain.label_schema import LabelSchema
from goldlabel.storage.engine import create_engine


@dataclass
class Context:
    settings: Settings
    engine: Engine
    _schemas: dict[tuple[int, int], LabelSchema] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Context":
        return cls(settings=settings, engine=create_engine(settings))

    def get_schema(self, project: dict) -> LabelSchema:
        """Parsed label schema of a project, cached per (id, updated_at): parsing once per
        project version keeps answer validation in microseconds."""
        key = (project["id"], project["updated_at"])
        schema = self._schemas.get(key)
        if schema is None:
            schema = LabelSchema.parse(project["label_schema"])
            with self._lock:
                if len(self._schemas) > 1000:
                    self._schemas.clear()
                self._schemas[key] = schema
        return schema

    def close(self) -> None:
        self.engine.dispose()

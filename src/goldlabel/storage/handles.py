"""The database handles the layers above storage pass around (a connection inside a
transaction, the engine in the context), named here so that services/ need not import
SQLAlchemy to annotate them: storage is the only package that imports it."""

from sqlalchemy.engine import Connection, Engine

__all__ = ["Connection", "Engine"]

"""The database handles the layers above storage pass around (a connection inside a
transaction, the engine in the context) and the error a failed statement raises, named here so
that nothing above storage imports SQLAlchemy: storage is the only package that does."""

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError as DatabaseError

__all__ = ["Connection", "DatabaseError", "Engine"]

"""Flask extensions, created unbound and initialised in :func:`create_app`."""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Any

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from .models.types import render_migration_item
from .schemas.common import ProblemSchema

#: Constraint names are fixed before the first migration so that Alembic can
#: drop and alter them on every engine (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

if TYPE_CHECKING:  # mypy cannot follow ``class X(db.Model)``
    Model = Base
else:
    Model = db.Model

migrate = Migrate(compare_type=True, render_as_batch=True, render_item=render_migration_item)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)


class ProblemApi(Api):
    """flask-smorest's Api with the error responses that ``errors.py`` really sends.

    Every error under ``/api/`` is ``application/problem+json`` with the ``Problem``
    schema, so the error response components (``NOT_FOUND``, ``UNPROCESSABLE_ENTITY``...)
    say so. There is no catch-all ``default`` response: each operation lists its own
    error statuses (``api.common.ApiBlueprint``), so an undocumented status is a bug
    that the API fuzz test (tests/security/test_fuzz_api.py) reports.
    """

    ERROR_SCHEMA = ProblemSchema
    ERROR_CONTENT_TYPE = "application/problem+json"
    DEFAULT_ERROR_RESPONSE_NAME = None

    #: Response headers the error handlers send with these statuses.
    ERROR_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
        401: {
            "WWW-Authenticate": {
                "description": "Always ``Bearer``.",
                "required": True,
                "schema": {"type": "string"},
            }
        },
        405: {
            "Allow": {
                "description": "The methods the path accepts.",
                "required": True,
                "schema": {"type": "string"},
            }
        },
        429: {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        },
        503: {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    }

    def _register_responses(self) -> None:
        """Register (lazily) one problem+json response per error status."""
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            if status in self.ERROR_HEADERS:
                response["headers"] = self.ERROR_HEADERS[status]
            prepare_response(response, self.spec, self.ERROR_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)


smorest_api = ProblemApi()

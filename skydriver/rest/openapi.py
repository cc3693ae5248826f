"""The OpenAPI 3.1 document, generated from the route table and the pydantic models (one source of truth).

Each handler declares its operations in `API`; request bodies are pydantic models; the roles come from the
`@requires` decorators when auth is on (see `skydriver.auth`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..auth import handler_roles

SCHEMA_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Op:
    """One operation of a route: what it does, its body model and query parameters."""

    summary: str
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    responses: dict[int, str] = field(default_factory=dict)
    #: no token needed (`@public` on the method)
    public: bool = False
    #: the media type of a 200 response (a server-sent event stream never ends)
    media_type: str = "application/json"


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "integer"}, "error": {"type": "string"}},
    "required": ["code", "error"],
}

OK_SCHEMAS: dict[str, dict[str, Any]] = {
    "application/json": {"type": "object"},
    "text/event-stream": {"type": "string"},
}

QUERY_PARAMS: dict[str, dict[str, Any]] = {
    "include_deleted": {"type": "boolean", "description": "also return a deleted scan"},
    "no_redirect": {"type": "boolean", "description": "do not follow replaced_by_scan_id (302)"},
    "projection": {"type": "string", "description": "pipe-delimited manifest fields, or *"},
    "last_event_id": {
        "type": "integer",
        "description": "resume after this event (as the Last-Event-ID header)",
    },
}


def _path(pattern: str) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    return path if path.startswith("/") else "/" + path


def build_openapi(routes: list[tuple[str, type]], version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        api: dict[str, Op] = getattr(handler, "API", {})
        if not api:
            continue
        path = _path(pattern)
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": r"^\w+$"},
            }
            for name in re.findall(r"\{(\w+)\}", path)
        ]
        item: dict[str, Any] = {}
        roles_by_method = handler_roles(handler)
        for method, op in api.items():
            operation: dict[str, Any] = {
                "summary": op.summary,
                "operationId": f"{method}_{handler.__name__}",
                "parameters": params
                + [
                    {"name": q, "in": "query", "required": False, "schema": QUERY_PARAMS[q]}
                    for q in op.query
                ],
                "security": [] if op.public else [{"bearer": []}],
                "x-roles": [str(r) for r in roles_by_method.get(method.upper(), ())],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {op.media_type: {"schema": OK_SCHEMAS[op.media_type]}},
                    },
                    **{
                        str(code): {
                            "description": text,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": SCHEMA_REF.format(model="Error")}
                                }
                            },
                        }
                        for code, text in {
                            **({} if op.public else {400: "invalid request"}),
                            **(
                                {} if op.public else {403: "authentication or authorization failed"}
                            ),
                            **op.responses,
                        }.items()
                    },
                },
            }
            if op.body is not None:
                schema = op.body.model_json_schema(ref_template=SCHEMA_REF, mode="validation")
                for name, sub in schema.pop("$defs", {}).items():
                    schemas[name] = sub
                schemas[op.body.__name__] = schema
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": SCHEMA_REF.format(model=op.body.__name__)}
                        }
                    },
                }
            item[method] = operation
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "SkyDriver REST API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }

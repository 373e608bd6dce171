"""The OpenAPI document, made exact where FastAPI's generated one is not.

FastAPI writes the routes; this adds what they cite but do not define (the `Problem` body of
every error, the bundle document a push takes) and states that an optional parameter is left
out rather than sent as `null` (a query string or header has no null).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from signalbeam.protocol.bundle_v1 import BundleSpec
from signalbeam.server.api.problem_responses import COMPONENTS, Problem

CITED_MODELS: tuple[type[BaseModel], ...] = (Problem, BundleSpec)


def _component_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in CITED_MODELS:
        schema = model.model_json_schema(by_alias=True, ref_template=COMPONENTS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def _parameters_never_null(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _without_null(parameter["schema"])


def exact(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with the cited schemas defined and parameters never null."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_component_schemas())
    _parameters_never_null(document)
    return document


def install(app: FastAPI) -> None:
    """Serve the exact document at the app's `openapi_url`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = exact(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override

"""A client span per database statement run inside a traced request or rollout step.

Statements outside any trace (ingest's group commits, the presence sweeper) get none, so
tracing adds nothing to the hot write path. A span carries the statement's text with its
placeholders, never the values bound to them: those include token hashes and labels.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

# Long multi-row INSERTs repeat their placeholders; the head says what they do.
MAX_STATEMENT_CHARS = 2000
SPAN_KEY = "signalbeam_span"
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|TABLE)\s+\"?(\w+)", re.IGNORECASE)


def span_name(statement: str) -> str:
    """`SELECT devices`: the operation and the first table it names, as OTel suggests."""
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    table = _TABLE.search(statement)
    return f"{operation} {table.group(1)}" if table else operation


def instrument(engine: AsyncEngine, tracer: Tracer) -> None:
    """Trace `engine`'s statements from now on."""
    system = engine.dialect.name
    sync_engine = engine.sync_engine

    def before(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        name = span_name(statement)
        attributes = {
            "db.system.name": system,
            "db.operation.name": name.split(" ", 1)[0],
            "db.query.text": statement[:MAX_STATEMENT_CHARS],
        }
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        setattr(context, SPAN_KEY, span)

    def after(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        span: Span | None = getattr(context, SPAN_KEY, None)
        if span is not None:
            span.end()

    def failed(error: ExceptionContext) -> None:
        span: Span | None = getattr(error.execution_context, SPAN_KEY, None)
        if span is None:
            return
        # The type only: drivers' messages quote the values (PostgreSQL's "Key (name)=(...)").
        span.set_attribute("error.type", type(error.original_exception).__qualname__)
        span.set_status(StatusCode.ERROR)
        span.end()

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)

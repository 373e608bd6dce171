"""OpenTelemetry traces, exported over OTLP/HTTP when an endpoint is configured (off by default).

What is traced: each management API and dashboard request (a server span from FastAPI's own
telemetry, named after the route template), the service use cases marked `traced`, the
database statements run inside either (`db_spans`), and each rollout engine step. The device
API is not: syncs are nearly all the traffic and are answered beside the framework, and a
30-second watch span says nothing; its Prometheus histograms cover it.

Nothing here imports the OpenTelemetry SDK until `install` runs, and without it `traced` and
`span` check one module attribute and call straight through.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from signalbeam import __version__

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from signalbeam.server.settings import ServerSettings

P = ParamSpec("P")
T = TypeVar("T")
Attributes = Mapping[str, str | int | float | bool]

SERVICE_NAME = "signalbeam-server"
TRACES_PATH = "/v1/traces"
# Requests that get no span: the device API (see above), probes, scrapes and static assets.
UNTRACED_PREFIXES = ("/api/device/", "/static/")
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# FastAPI's telemetry, all of it off: SignalBeam decides what is traced and where it goes.
TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
}

_tracer: Tracer | None = None


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL, e.g. `http://host:4318`."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def untraced(scope: Mapping[str, Any]) -> bool:
    """Whether a request goes without a span."""
    path: str = scope.get("path", "")
    return path in UNTRACED_PATHS or path.startswith(UNTRACED_PREFIXES)


class Tracing:
    """This process's tracer provider: spans batched and sent to one OTLP/HTTP endpoint."""

    def __init__(self, provider: TracerProvider, instance: str) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("signalbeam", __version__)
        self.instance = instance

    def telemetry(self) -> TelemetryConfig:
        """FastAPI's request spans, on this provider, for the requests that are traced."""
        return {
            **TELEMETRY_OFF,
            "tracing": True,
            "tracer_provider": self.provider,
            "operation_spans": False,
            "exclude": untraced,
        }

    def shutdown(self) -> None:
        """Send what is batched and stop (blocking: call it in a thread)."""
        global _tracer
        _tracer = None
        self.provider.shutdown()


def install(settings: ServerSettings, engine: AsyncEngine) -> Tracing | None:
    """Start tracing when `settings.otlp_endpoint` is set; None (and nothing loaded) otherwise."""
    global _tracer
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from signalbeam.server.observability import db_spans

    instance = f"{socket.gethostname()}:{settings.port}"
    resource = Resource.create(
        {
            "service.name": SERVICE_NAME,
            "service.version": __version__,
            "service.instance.id": instance,
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracing = Tracing(provider, instance)
    db_spans.instrument(engine, tracing.tracer)
    _tracer = tracing.tracer
    return tracing


def _inside_a_trace() -> bool:
    from opentelemetry import trace

    return trace.get_current_span().is_recording()


def traced(
    name: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Give a service use case its own span, `name`, inside a traced request."""

    def decorate(
        function: Callable[P, Coroutine[Any, Any, T]],
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            tracer = _tracer
            # A use case a worker calls outside any request stays untraced, not a new trace.
            if tracer is None or not _inside_a_trace():
                return await function(*args, **kwargs)
            with tracer.start_as_current_span(name):
                return await function(*args, **kwargs)

        return wrapper

    return decorate


@contextlib.contextmanager
def span(name: str, attributes: Attributes | None = None) -> Iterator[Span | None]:
    """A span (a new trace when none is current) for a worker's unit of work; None when off."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def annotate(target: Span | None = None, **attributes: str | int | float | bool) -> None:
    """Add attributes to `target`, or to the current span, when tracing is on."""
    if _tracer is None:
        return
    if target is None:
        from opentelemetry import trace

        target = trace.get_current_span()
    target.set_attributes({f"signalbeam.{key}": value for key, value in attributes.items()})


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, as log lines carry them; None when off."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"

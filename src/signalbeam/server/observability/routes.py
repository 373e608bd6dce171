"""`GET /metrics` on the main listener: any API token; it shows that token's tenant only."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as TEXT_FORMAT

from signalbeam.server.api.deps import CurrentActor, RuntimeDep

router = APIRouter()


# Outside the OpenAPI document: it is Prometheus's text format, not part of the JSON API.
@router.get("/metrics", include_in_schema=False)
async def metrics(runtime: RuntimeDep, actor: CurrentActor) -> Response:
    """Prometheus metrics: the server's own and the caller's tenant's fleet."""
    body = await runtime.metrics.scrape(actor.tenant_id)
    return Response(body, media_type=TEXT_FORMAT)

"""Device API v1: artifact downloads, streamed from the store, resumable with HTTP Range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.responses import StreamingResponse

from signalbeam.domain.artifacts import DIGEST_PATTERN, check_sha256
from signalbeam.server.api.deps import CurrentDevice, RuntimeDep
from signalbeam.server.api.problem_responses import problem_response
from signalbeam.server.api.problems import problem
from signalbeam.server.artifacts.ranges import ByteRange, RangeNotSatisfiable, parse_range
from signalbeam.server.runtime import Runtime
from signalbeam.server.services import artifacts as artifact_service
from signalbeam.server.services import downloads
from signalbeam.server.services.downloads import Download, tracked

router = APIRouter(prefix="/api/device/v1", tags=["device"])
OCTETS = "application/octet-stream"
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {OCTETS: {}}, "description": "the whole blob"},
    206: {"content": {OCTETS: {}}, "description": "the range asked for, with Content-Range"},
    404: problem_response(404, "no such artifact in this device's tenant"),
    416: problem_response(416),
}


@router.get("/artifacts/{sha256}", response_class=Response, responses=RESPONSES)
async def download(
    sha256: Annotated[str, Path(json_schema_extra={"pattern": DIGEST_PATTERN})],
    request: Request,
    runtime: RuntimeDep,
    device: CurrentDevice,
) -> Response:
    """The blob with this sha256, if the device's tenant uploaded it; honours one Range."""
    digest = check_sha256(sha256)
    size = await artifact_service.device_blob(runtime, device, digest)
    etag = f'"{digest}"'
    # The digest names the bytes, so they never change under this URL: cache freely.
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, immutable"}
    wanted = request.headers.get("range")
    if wanted is not None and request.headers.get("if-range", etag) != etag:
        wanted = None  # RFC 9110 §13.1.5: a stale validator means "send it all"
    if wanted is None:
        headers["Content-Length"] = str(size)
        whole = Download(device, digest, ByteRange(0, size, size))
        return StreamingResponse(_body(runtime, whole), media_type=OCTETS, headers=headers)
    try:
        span = parse_range(wanted, size)
    except RangeNotSatisfiable as err:
        headers["Content-Range"] = f"bytes */{size}"
        return problem(416, "Range not satisfiable", str(err), field="Range", headers=headers)
    headers["Content-Range"] = span.content_range
    headers["Content-Length"] = str(span.length)
    body = _body(runtime, Download(device, digest, span))
    return StreamingResponse(body, status_code=206, media_type=OCTETS, headers=headers)


def _body(runtime: Runtime, download: Download) -> AsyncIterator[bytes]:
    span = download.span
    chunks = runtime.artifacts.open(download.sha256, span.start, span.end)
    return tracked(download, chunks, partial(downloads.count, runtime))

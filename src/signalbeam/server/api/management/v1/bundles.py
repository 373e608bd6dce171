"""Bundles: push immutable versions (JSON or YAML), list, inspect, diff, and assign to devices."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.exceptions import HTTPException

from signalbeam.domain.errors import Malformed
from signalbeam.domain.model import Role
from signalbeam.protocol.bundle_yaml import load_yaml
from signalbeam.server.api.deps import CurrentActor, RuntimeDep
from signalbeam.server.api.management.v1 import convert, schemas
from signalbeam.server.api.problem_responses import COMPONENTS, problem_response
from signalbeam.server.services import bundles as bundle_service

router = APIRouter(prefix="/bundles", tags=["bundles"])

JSON_TYPES = {"application/json", ""}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
BUNDLE_SCHEMA = COMPONENTS + "BundleSpec"  # defined by openapi_document
PUSH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A bundle document (spec v1): name, version, containers and/or apps.",
        "content": {
            "application/json": {"schema": {"$ref": BUNDLE_SCHEMA}},
            "application/yaml": {"schema": {"$ref": BUNDLE_SCHEMA}},
        },
    }
}


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise Malformed(
            f"body is not valid JSON ({err.msg} at {where}); send a JSON object", field="body"
        ) from err
    except (ValueError, RecursionError) as err:
        raise Malformed(
            f"body is not valid JSON ({err}); send a JSON object", field="body"
        ) from err


async def _document(request: Request) -> Any:
    """The pushed document, decoded as JSON or YAML according to Content-Type."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES | YAML_TYPES and not media_type.endswith("+json"):
        raise HTTPException(
            415, f"send the bundle as application/json or application/yaml, not {media_type}"
        )
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as err:
        raise Malformed("body is not UTF-8 text", field="body") from err
    return load_yaml(text) if media_type in YAML_TYPES else _decode_json(text)


@router.post(
    "",
    response_model=schemas.BundlePushed,
    status_code=201,
    openapi_extra=PUSH_BODY,
    responses={
        200: {"description": "this exact version was already pushed"},
        415: problem_response(415),
    },
)
async def push(
    request: Request, response: Response, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.BundlePushed:
    """Push a bundle version (201); the same version with the same content again answers 200."""
    # Refuse viewers before reading and validating a body they may not send at all.
    actor.require(Role.OPERATOR)
    pushed = await bundle_service.push(runtime, actor, await _document(request))
    if not pushed.created:
        response.status_code = 200
    return convert.bundle_pushed(pushed)


@router.get("", response_model=list[schemas.BundlePublic])
async def list_bundles(runtime: RuntimeDep, actor: CurrentActor) -> list[schemas.BundlePublic]:
    """Bundles of your tenant: latest version, number of versions, devices running and desiring."""
    return [convert.bundle(s) for s in await bundle_service.list_bundles(runtime, actor)]


@router.get("/{name}", response_model=schemas.BundleDetail)
async def show(name: str, runtime: RuntimeDep, actor: CurrentActor) -> schemas.BundleDetail:
    """A bundle and its versions, newest first, with device counts per version."""
    detail = await bundle_service.show(runtime, actor, name)
    return schemas.BundleDetail(
        **convert.bundle(detail.summary).model_dump(),
        versions=[convert.bundle_version(v) for v in detail.versions],
    )


@router.get("/{name}/diff", response_model=schemas.BundleDiffPublic)
async def diff(
    name: str,
    runtime: RuntimeDep,
    actor: CurrentActor,
    before: Annotated[str, Query(alias="from", max_length=200, examples=["1.2.0"])],
    after: Annotated[str, Query(alias="to", max_length=200, examples=["latest"])],
) -> schemas.BundleDiffPublic:
    """What changed from one version to another: a unified YAML diff and the changed paths."""
    result = await bundle_service.diff(runtime, actor, name, before, after)
    return schemas.BundleDiffPublic(
        name=name,
        from_version=result.before.version,
        to_version=result.after.version,
        from_digest=result.before.digest,
        to_digest=result.after.digest,
        changed_paths=result.paths,
        diff=result.diff,
    )


@router.get("/{name}/versions/{version}", response_model=schemas.BundleVersionDetail)
async def show_version(
    name: str, version: str, runtime: RuntimeDep, actor: CurrentActor
) -> schemas.BundleVersionDetail:
    """One version (or `latest`, the highest by semver) with its canonical spec."""
    summary = await bundle_service.show_version(runtime, actor, name, version)
    return schemas.BundleVersionDetail(
        **convert.bundle_version(summary).model_dump(), spec=summary.version.spec
    )


@router.post("/{name}/versions/{version}/assign", response_model=schemas.AssignmentPublic)
async def assign(
    name: str,
    version: str,
    body: schemas.BundleAssign,
    runtime: RuntimeDep,
    actor: CurrentActor,
) -> schemas.AssignmentPublic:
    """Make this version the desired state of `devices`, a `group` or a `selector` (one of them)."""
    target = bundle_service.Target(body.devices, body.group, body.selector)
    done = await bundle_service.assign(runtime, actor, name, version, target)
    row = done.version
    return schemas.AssignmentPublic(
        bundle=row.name,
        version=row.version,
        digest=row.digest,
        devices=[
            schemas.AssignedDevice(device_id=d, generation=g)
            for d, g in sorted(done.generations.items())
        ],
        cordoned=done.cordoned,
    )

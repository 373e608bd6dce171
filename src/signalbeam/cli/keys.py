"""`signalbeam keys`: operator signing keys kept on this machine, registered with the tenant.

Private keys live in `<config dir>/keys/NAME.json` (mode 0600) and never leave this machine;
the server only ever sees public keys and signatures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from signalbeam.cli.client import Api, connect
from signalbeam.cli.config import config_path
from signalbeam.cli.output import CliError, JsonFlag, ago, console, print_json, table
from signalbeam.protocol.signing import KeyPair, SignatureError, Trust, TrustedKey

app = typer.Typer(help="Signing keys: sign bundles so devices can prove who released them.")
KEY_COLUMNS = ["NAME", "KEY ID", "KIND", "REGISTERED", "BY"]
SignWith = Annotated[
    str | None,
    typer.Option("--sign-with", metavar="KEY", help="Sign the change with this local key."),
]


def keys_dir() -> Path:
    return config_path().parent / "keys"


def key_file(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise CliError(f"{name!r} is not a key name; use letters, digits, dots and dashes")
    return keys_dir() / f"{name}.json"


def load_key(name: str) -> KeyPair:
    """The local key pair NAME, or a one-line error saying how to make one."""
    path = key_file(name)
    try:
        data = json.loads(path.read_text())
        return KeyPair(str(data["private_key"]), str(data["public_key"]))
    except FileNotFoundError as err:
        raise CliError(
            f"no local key {name}; create it with: signalbeam keys create {name}"
        ) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CliError(f"{path} is not a readable key file ({err})") from err


@app.command()
def create(name: Annotated[str, typer.Argument(help="A name for the key, e.g. alice.")]) -> None:
    """Make an ed25519 key pair on this machine (the private key stays here)."""
    path = key_file(name)
    if path.exists():
        raise CliError(f"{path} exists; pick another name or delete it first")
    pair = KeyPair.generate()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"key_id": pair.key_id, **pair.__dict__}, handle, indent=2)
    typer.echo(f"created {name} ({pair.key_id}) in {path}")
    typer.echo(f"register it with your tenant: signalbeam keys register {name}")


def _trust(api: Api) -> Trust:
    body: dict[str, Any] = api.get("/api/v1/signing/trust")
    try:
        return Trust.from_statement(body["statement"])
    except (KeyError, SignatureError) as err:
        raise CliError(f"the server sent an unreadable trust statement ({err})") from err


def _signed(trust: Trust, signer: str | None) -> list[dict[str, str]]:
    return [load_key(signer).sign(trust.payload()).to_dict()] if signer else []


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="The local key to register.")],
    sign_with: SignWith = None,
) -> None:
    """Make the tenant's devices trust this key (admins only)."""
    pair = load_key(name)
    with connect() as api:
        current = _trust(api)
        new = TrustedKey(pair.key_id, "operator", pair.public_key)
        proposed = Trust(current.version + 1, (*current.keys, new), current.operator_keys_only)
        body = {
            "name": name,
            "public_key": pair.public_key,
            "trust_signatures": _signed(proposed, sign_with),
        }
        api.post("/api/v1/signing-keys", body)
    typer.echo(f"registered {name} ({pair.key_id}); devices trust it from their next update")


@app.command("ls")
def list_keys(json_output: JsonFlag = False) -> None:
    """Keys the tenant's devices trust, and whether the server key still counts."""
    with connect() as api:
        keys: list[dict[str, Any]] = api.get("/api/v1/signing-keys")
        trust: dict[str, Any] = api.get("/api/v1/signing/trust")
    if json_output:
        print_json({"keys": keys, "operator_keys_only": trust["operator_keys_only"]})
        return
    rows = [
        [k["name"], k["key_id"], k["kind"], ago(k["created_at"]), k["created_by"]] for k in keys
    ]
    console().print(table(KEY_COLUMNS, rows))
    only = trust["operator_keys_only"]
    typer.echo(
        f"trust statement v{trust['version']}: "
        + ("operator keys only" if only else "the server key signs pushes too")
    )


@app.command()
def policy(
    operator_keys_only: Annotated[
        bool,
        typer.Option(
            "--operator-keys-only/--allow-server-key",
            help="Refuse bundles signed only by the server's key.",
        ),
    ],
    sign_with: SignWith = None,
) -> None:
    """Switch the tenant to operator keys only, or back (admins only)."""
    with connect() as api:
        current = _trust(api)
        proposed = Trust(current.version + 1, current.keys, operator_keys_only)
        body = {
            "operator_keys_only": operator_keys_only,
            "trust_signatures": _signed(proposed, sign_with),
        }
        api.put("/api/v1/signing/policy", body)
    typer.echo(
        "devices now accept bundles signed by operator keys only"
        if operator_keys_only
        else "devices accept bundles signed by the server key again"
    )


def sign_version(
    api: Api, name: str, version: str, local: dict[str, Any] | None, signer: str
) -> str:
    """Sign a pushed version's manifest with local key `signer`; returns the key id.

    When the pushed file was complete (no artifact names to resolve) the server's stored
    spec must equal it, so a server cannot slip something else under the operator's key.
    """
    from signalbeam.cli.bundles import bundle_path
    from signalbeam.protocol.signing import manifest_payload

    pair = load_key(signer)
    stored: dict[str, Any] = api.get(bundle_path(name, version))
    spec = stored["spec"]
    if local is not None and local != spec:
        raise CliError(
            f"the server stored {name}@{version} differently from your file; not signing it"
        )
    signature = pair.sign(manifest_payload(spec)).to_dict()
    api.post(f"{bundle_path(name, version)}/signatures", signature)
    return pair.key_id

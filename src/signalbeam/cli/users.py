"""`signalbeam users` and `signalbeam api-tokens`: people, their roles and their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from signalbeam.cli import arguments
from signalbeam.cli.client import connect
from signalbeam.cli.login import PasswordStdin, read_password
from signalbeam.cli.output import JsonFlag, ago, console, parse_time, print_json, table
from signalbeam.domain.model import Role

app = typer.Typer(help="Users of your tenant and their roles.", no_args_is_help=True)
api_tokens = typer.Typer(help="Your API tokens for the CLI and scripts.", no_args_is_help=True)
Username = Annotated[str, typer.Argument(metavar="USERNAME", help="The user's login name.")]


@app.command("ls")
def list_users(json_output: JsonFlag = False) -> None:
    """List users with their roles."""
    with connect() as api:
        users: list[dict[str, Any]] = api.get("/api/v1/users")
    if json_output:
        print_json(users)
        return
    rows = [
        [
            u["username"],
            u["role"],
            Text("disabled", style="red") if u["disabled"] else Text("active", style="green"),
            ago(u["created_at"]),
            u["created_by"],
        ]
        for u in users
    ]
    console().print(table(["USERNAME", "ROLE", "STATUS", "CREATED", "CREATED BY"], rows))


@app.command()
def create(
    username: Username,
    role: Annotated[Role, typer.Option(help="What the user may do.")],
    password_stdin: PasswordStdin = False,
    json_output: JsonFlag = False,
) -> None:
    """Add a user with a role and a password (asked for, or read from stdin)."""
    password = read_password(password_stdin, confirm=True)
    body = {"username": username, "role": role.value, "password": password}
    with connect() as api:
        user: dict[str, Any] = api.post("/api/v1/users", body)
    if json_output:
        print_json(user)
        return
    typer.echo(f"Created {user['role']} {user['username']}; they log in with:")
    typer.echo(f"  signalbeam login --server {api.server} --username {user['username']}")


@app.command()
def passwd(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Set a password: your own, or anyone's as an admin."""
    password = read_password(password_stdin, confirm=True)
    with connect() as api:
        api.put(f"/api/v1/users/{quote(username, safe='')}/password", {"password": password})
    typer.echo(f"Password of {username} changed.")


def _token_status(token: dict[str, Any]) -> Text:
    if token["revoked"]:
        return Text("revoked", style="red")
    expires = parse_time(token["expires_at"])
    if expires is not None and expires <= datetime.now(UTC):
        return Text("expired", style="yellow")
    return Text("active", style="green")


@api_tokens.command("ls")
def list_tokens(json_output: JsonFlag = False) -> None:
    """List your API tokens (their secrets are never shown again)."""
    with connect() as api:
        tokens: list[dict[str, Any]] = api.get("/api/v1/api-tokens")
    if json_output:
        print_json(tokens)
        return
    rows = [
        [
            str(t["id"]),
            t["name"],
            _token_status(t),
            ago(t["created_at"]),
            ago(t["expires_at"]) if t["expires_at"] else "never",
        ]
        for t in tokens
    ]
    console().print(table(["ID", "NAME", "STATUS", "CREATED", "EXPIRES"], rows))


@api_tokens.command("create")
def create_token(
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the token is for, e.g. ci.")],
    expires: Annotated[
        str, typer.Option(help="How long it works: 30d, 24h, ... or never.")
    ] = "30d",
    json_output: JsonFlag = False,
) -> None:
    """Create an API token for yourself; it is shown once."""
    body = {"name": name, "expires_in": arguments.expires_in(expires)}
    with connect() as api:
        issued: dict[str, Any] = api.post("/api/v1/api-tokens", body)
    if json_output:
        print_json(issued)
        return
    expiry = ago(issued["expires_at"]) if issued["expires_at"] else "never"
    typer.echo(f"API token {issued['id']} ({name}), expires {expiry}; shown once, store it now:")
    typer.echo(f"  {issued['token']}")


@api_tokens.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (api-tokens ls).")],
) -> None:
    """Revoke an API token; anything using it stops working at once."""
    with connect() as api:
        api.delete(f"/api/v1/api-tokens/{token_id}")
    typer.echo(f"Revoked API token {token_id}.")

"""`signalbeam login` and `logout`: remember which server to talk to and as whom."""

from __future__ import annotations

import socket
import sys
from typing import Annotated, Any

import typer

from signalbeam.cli import config
from signalbeam.cli.client import Api, ApiError, ProblemError
from signalbeam.cli.config import Credentials
from signalbeam.cli.output import CliError

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def read_password(from_stdin: bool, confirm: bool = False) -> str:
    """A password from stdin's first line, or from a hidden prompt."""
    if not from_stdin:
        entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
        return entered
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin was given but stdin held no password")
    return password


def _whoami(server: str, token: str) -> dict[str, Any]:
    with Api(server, token) as api:
        try:
            me: dict[str, Any] = api.get("/api/v1/me")
        except ProblemError as err:
            if err.status != 401:
                raise
            raise CliError(
                f"the server at {server} did not accept this API token ({err.message})"
            ) from err
    return me


def _password_login(server: str, tenant: str, username: str, password: str) -> Credentials:
    body = {
        "tenant": tenant,
        "username": username,
        "password": password,
        "token_name": f"cli on {socket.gethostname()}"[:200],
    }
    with Api(server) as api:
        issued: dict[str, Any] = api.post("/api/v1/auth/login", body)
    return Credentials(server, issued["token"], issued["id"])


def login(
    server: Annotated[
        str, typer.Option(help="The control plane's URL, e.g. http://127.0.0.1:8420")
    ],
    token: Annotated[
        str | None, typer.Option(help="An API token (the server prints the first admin's).")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Log in with a password instead of a token.")
    ] = None,
    tenant: Annotated[str, typer.Option(help="Your tenant, with --username.")] = "default",
    password_stdin: PasswordStdin = False,
) -> None:
    """Check a token (or username and password) against a server and remember it."""
    url = config.server_url(server)
    if token and username:
        raise CliError("give either --token or --username, not both")
    if token:
        credentials = Credentials(url, token)
    elif username:
        password = read_password(password_stdin)
        credentials = _password_login(url, tenant, username, password)
    else:
        raise CliError(f"give --token TOKEN or --username NAME; e.g. {config.LOGIN_HINT}")
    me = _whoami(url, credentials.token)
    path = config.save(credentials)
    typer.echo(f"Logged in to {url} as {me['username']} ({me['role']})")
    typer.echo(f"Saved to {path}", err=True)


def logout() -> None:
    """Forget the stored login, and revoke its API token when `login --username` issued it."""
    stored = config.remove()
    if stored is None:
        typer.echo("Not logged in; nothing to do.")
        return
    if stored.token_id is not None:
        try:
            with Api(stored.server, stored.token) as api:
                api.delete(f"/api/v1/api-tokens/{stored.token_id}")
        except ApiError as err:
            typer.echo(f"warning: could not revoke the API token: {err.message}", err=True)
    typer.echo(f"Logged out of {stored.server}")

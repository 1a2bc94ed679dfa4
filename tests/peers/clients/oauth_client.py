"""A real OAuth MCP client: the official Python SDK 2.x (`mcp==2.3.0`, `.peers/py2`) with its own client-credentials
support (`mcp.client.auth.extensions.client_credentials`: `ClientCredentialsOAuthProvider` for a client secret,
`PrivateKeyJWTOAuthProvider` + `SignedJWTParameters` for `private_key_jwt`, RFC 7523), for Lifeline's OAuth tests.

Given an MCP URL and client credentials it does what the SDK does for any client: the first request goes out
without a token, the server's 401 names the RFC 9728 protected resource metadata, that names the authorization
server, whose RFC 8414 / OIDC metadata gives the token endpoint; the token request carries `resource` (RFC 8707).
Then it lists the tools and optionally calls one, and prints ONE JSON line on stdout:

  {"ok": true, "protocol_version": "...", "tools": [...], "call": {"name", "is_error", "text", "structured"},
   "tokens_obtained": N}
  {"ok": false, "error_type": "...", "message": "...", "tokens_obtained": N}      (exit status 1)

Usage:
  python oauth_client.py URL --client-id ID [--client-secret-file F | --private-key-file PEM [--key-alg ES256]]
                         [--auth-method client_secret_basic|client_secret_post] [--scope S] [--issuer URL]
                         [--mode legacy|auto|2026-07-28] [--call NAME [--args JSON]] [--timeout S]
  python oauth_client.py URL --no-auth ...      (the same client without any credentials: expect a refusal)

The secret comes from `--client-secret-file` or the `OAUTH_CLIENT_SECRET` environment variable, never argv.
`--issuer` pins the authorization server (the SDK then refuses metadata for any other issuer). Every run is bounded
by `--timeout` (default 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class MemoryStorage:
    """The SDK's `TokenStorage` protocol, in memory; counts the tokens the provider obtained."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.obtained = 0

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.obtained += 1
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def provider(args: argparse.Namespace, storage: MemoryStorage) -> httpx2.Auth | None:
    if args.no_auth:
        return None
    if args.private_key_file:
        params = SignedJWTParameters(
            issuer=args.client_id,
            subject=args.client_id,
            signing_key=Path(args.private_key_file).read_text(),
            signing_algorithm=args.key_alg,
        )
        return PrivateKeyJWTOAuthProvider(
            server_url=args.url,
            storage=storage,
            client_id=args.client_id,
            assertion_provider=params.create_assertion_provider(),
            scope=args.scope,
            issuer=args.issuer,
        )
    if args.client_secret_file:
        secret = Path(args.client_secret_file).read_text().strip()
    else:
        secret = os.environ.get("OAUTH_CLIENT_SECRET", "")
    if not secret:
        raise SystemExit("oauth_client: no secret (--client-secret-file or OAUTH_CLIENT_SECRET)")
    return ClientCredentialsOAuthProvider(
        server_url=args.url,
        storage=storage,
        client_id=args.client_id,
        client_secret=secret,
        token_endpoint_auth_method=args.auth_method,
        scope=args.scope,
        issuer=args.issuer,
    )


async def run(args: argparse.Namespace, storage: MemoryStorage) -> dict[str, Any]:
    auth = provider(args, storage)
    async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=60)) as http:
        transport = streamable_http_client(args.url, http_client=http)
        async with Client(transport, mode=args.mode, cache=None) as client:
            out: dict[str, Any] = {"ok": True, "protocol_version": client.protocol_version}
            listed = await client.list_tools()
            out["tools"] = [t.name for t in listed.tools]
            if args.call:
                result = await client.call_tool(args.call, json.loads(args.args) if args.args else {})
                texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
                out["call"] = {
                    "name": args.call,
                    "is_error": bool(result.is_error),
                    "text": "\n".join(texts),
                    "structured": result.structured_content,
                }
            return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret-file")
    parser.add_argument("--private-key-file")
    parser.add_argument("--key-alg", default="ES256")
    parser.add_argument("--auth-method", choices=["client_secret_basic", "client_secret_post"],
                        default="client_secret_basic")
    parser.add_argument("--scope")
    parser.add_argument("--issuer")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--mode", default="legacy")
    parser.add_argument("--call")
    parser.add_argument("--args")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if not args.no_auth and not args.client_id:
        parser.error("--client-id is required unless --no-auth")
    # Only the deprecation notice for a missing `issuer` (SDK 3.0 will require it); nothing else is silenced.
    warnings.filterwarnings("ignore", message="Omitting `issuer` is deprecated")
    storage = MemoryStorage()
    try:
        out = asyncio.run(asyncio.wait_for(run(args, storage), args.timeout))
    except BaseException as exc:  # noqa: BLE001 - report every failure as one JSON line
        inner = exc
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        out = {"ok": False, "error_type": type(inner).__name__, "message": str(inner)[:2000]}
    out["tokens_obtained"] = storage.obtained
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

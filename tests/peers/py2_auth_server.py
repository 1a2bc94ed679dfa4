"""An MCP server that checks OAuth tokens with the official Python SDK 2.x's own auth support (`mcp==2.3.0`:
`AuthSettings` + a `TokenVerifier`), for Lifeline's authenticated-probe and OAuth-client tests.

It is an OAuth 2.1 resource server as the MCP authorization chapter has it: a request without a valid bearer token
gets the SDK's 401 with `WWW-Authenticate: Bearer error="invalid_token", ..., resource_metadata="<RFC 9728 URL>"`,
and `/.well-known/oauth-protected-resource/mcp` names the authorization server (`--issuer`). Tokens are checked one
of two ways (`--verify`):

  jwt            RS256 signature against the issuer's JWKS (PyJWT's `PyJWKClient`, URL from the issuer's
                 `/.well-known/openid-configuration`), `iss` exact, `aud` must contain this server's resource URL,
                 `exp` checked.
  introspection  RFC 7662 against the issuer's introspection endpoint (client_secret_basic with
                 `--introspection-client-id` / `--introspection-client-secret`); `active` required, `aud` as above.

The SDK's `validate_token_resource` is on, so a token for another resource is refused even if the verifier missed
it. `--required-scope` (repeatable) makes the SDK answer 403 `insufficient_scope` without it.

Tools:
  echo(message)        -> text equal to `message`
  add(a, b)            -> the sum, with `outputSchema` and `structuredContent` `{"result": sum}`
  search(query, limit) -> `structuredContent` `{"items": [{"id", "title", "score"}], "total"}` with `outputSchema`
  fetch(id)            -> `structuredContent` `{"id", "title", "body"}` with `outputSchema`; unknown id: isError
  whoami()             -> `structuredContent` `{"client_id", "subject", "scopes", "resource"}` of the caller's token
  slow(ms)             -> waits `ms` milliseconds (at most 30 s), then "slept MS ms"
  fail()               -> a result with `isError: true`

Usage (binds 127.0.0.1 on a port the OS picks, learns it before building the app since the resource URL must name
it, then prints `py2-auth-server: listening on 127.0.0.1:PORT`):

  python py2_auth_server.py --issuer URL [--verify jwt|introspection] [--mode stateful|stateless|json]
                            [--introspection-client-id ID --introspection-client-secret S] [--required-scope S]...

Extra route (no auth): `GET /debug/verifications` -> `{"verified": N, "refused": M}`, how many bearer tokens the
verifier accepted and refused, so a test can tell a cached token from a fresh one per request.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from typing import Any

import httpx2
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ANNOUNCE = "py2-auth-server: listening on 127.0.0.1:"
COUNTS = {"verified": 0, "refused": 0}
DOCUMENTS = {
    "doc-1": ("Lifeline canary", "The canary document every transaction can find."),
    "doc-2": ("Second document", "Another document about lifeline probes."),
    "doc-3": ("Unrelated", "Nothing to see here."),
}


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _resource_of(aud: Any, resource: str) -> str | None:
    """The audience entry equal to this server's resource (trailing slash aside), else None."""
    want = resource.rstrip("/")
    return next((a for a in _audiences(aud) if a.rstrip("/") == want), None)


def _access_token(token: str, claims: dict[str, Any], resource: str) -> AccessToken:
    scope = claims.get("scope") or ""
    return AccessToken(
        token=token,
        client_id=str(claims.get("client_id") or claims.get("sub") or ""),
        scopes=scope.split() if isinstance(scope, str) else [],
        expires_at=int(claims["exp"]) if isinstance(claims.get("exp"), (int, float)) else None,
        resource=_resource_of(claims.get("aud"), resource),
        subject=claims.get("sub"),
        claims={"iss": claims.get("iss")},
    )


class JwtVerifier:
    """RS256 JWT access tokens (RFC 9068) against the issuer's JWKS; `aud` must contain `resource`."""

    def __init__(self, issuer: str, resource: str) -> None:
        self.issuer = issuer
        self.resource = resource
        self._jwks: jwt.PyJWKClient | None = None

    async def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            async with httpx2.AsyncClient(timeout=10) as http:
                meta = (await http.get(f"{self.issuer}/.well-known/openid-configuration")).json()
            # PyJWKClient caches the key set and refetches it once for an unknown kid (key rotation).
            self._jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, lifespan=300, timeout=10)
        return self._jwks

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            client = await self._client()
            key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, httpx2.HTTPError, KeyError, ValueError) as exc:
            print(f"py2-auth-server: refused a JWT: {exc}", file=sys.stderr, flush=True)
            COUNTS["refused"] += 1
            return None
        COUNTS["verified"] += 1
        return _access_token(token, claims, self.resource)


class IntrospectionVerifier:
    """RFC 7662 introspection at the issuer; `active` required, `aud` must contain `resource`."""

    def __init__(self, issuer: str, resource: str, client_id: str, client_secret: str) -> None:
        self.issuer = issuer
        self.resource = resource
        self.auth = httpx2.BasicAuth(client_id, client_secret)
        self._endpoint: str | None = None

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                if self._endpoint is None:
                    meta = (await http.get(f"{self.issuer}/.well-known/openid-configuration")).json()
                    self._endpoint = meta["introspection_endpoint"]
                resp = await http.post(self._endpoint, data={"token": token}, auth=self.auth)
            claims = resp.json() if resp.status_code == 200 else {}
        except (httpx2.HTTPError, KeyError, ValueError) as exc:
            print(f"py2-auth-server: introspection failed: {exc}", file=sys.stderr, flush=True)
            claims = {}
        if claims.get("active") is not True or _resource_of(claims.get("aud"), self.resource) is None:
            COUNTS["refused"] += 1
            return None
        if isinstance(claims.get("exp"), (int, float)) and claims["exp"] < time.time():
            COUNTS["refused"] += 1
            return None
        COUNTS["verified"] += 1
        return _access_token(token, claims, self.resource)


class Item(BaseModel):
    id: str
    title: str
    score: float


class SearchResult(BaseModel):
    items: list[Item]
    total: int


class Document(BaseModel):
    id: str
    title: str
    body: str


class Caller(BaseModel):
    client_id: str
    subject: str | None
    scopes: list[str]
    resource: str | None


def build_server(args: argparse.Namespace, resource: str) -> MCPServer:
    if args.verify == "off":
        # The same server and tools with no auth at all: a same-server unauthenticated baseline (benchmarks).
        server = MCPServer(name="lifeline-py2-auth-peer", version="2.3.0-peer")
    else:
        if args.verify == "jwt":
            verifier: Any = JwtVerifier(args.issuer, resource)
        else:
            verifier = IntrospectionVerifier(
                args.issuer, resource, args.introspection_client_id, args.introspection_client_secret
            )
        server = MCPServer(
            name="lifeline-py2-auth-peer",
            version="2.3.0-peer",
            token_verifier=verifier,
            auth=AuthSettings(
                issuer_url=args.issuer,
                resource_server_url=resource,
                required_scopes=args.required_scope or None,
                validate_token_resource=True,
            ),
        )

    @server.tool(description="Echo the message back as text.")
    def echo(message: str) -> str:
        return message

    @server.tool(description="Add two numbers.", structured_output=True)
    def add(a: float, b: float) -> float:
        total = a + b
        return int(total) if float(total).is_integer() else total

    @server.tool(description="Search the documents whose title or body mentions the query.")
    def search(query: str, limit: int = 10) -> SearchResult:
        q = query.lower()
        items = [
            Item(id=k, title=t, score=1.0 if q in t.lower() else 0.5)
            for k, (t, body) in DOCUMENTS.items()
            if q in t.lower() or q in body.lower()
        ]
        return SearchResult(items=items[: max(0, limit)], total=len(items))

    @server.tool(description="Fetch one document by id.")
    def fetch(id: str) -> Document:
        if id not in DOCUMENTS:
            raise ToolError(f"no document {id!r}")
        title, body = DOCUMENTS[id]
        return Document(id=id, title=title, body=body)

    @server.tool(description="Who the caller's token says it is.")
    def whoami() -> Caller:
        token = get_access_token()
        if token is None:
            raise ToolError("no access token in this request")
        return Caller(client_id=token.client_id, subject=token.subject, scopes=token.scopes, resource=token.resource)

    @server.tool(description="Wait `ms` milliseconds (at most 30000), then answer.")
    async def slow(ms: int) -> str:
        ms = max(0, min(ms, 30_000))
        await asyncio.sleep(ms / 1000)
        return f"slept {ms} ms"

    @server.tool(description="Always fails: the result has isError true.")
    def fail() -> str:
        raise ToolError("this tool always fails")

    @server.custom_route("/debug/verifications", methods=["GET"])
    async def verifications(_request: Request) -> Response:
        return JSONResponse(COUNTS)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True, help="the authorization server's issuer URL")
    parser.add_argument("--verify", choices=["jwt", "introspection", "off"], default="jwt")
    parser.add_argument("--mode", choices=["stateful", "stateless", "json"], default="stateful")
    parser.add_argument("--introspection-client-id")
    parser.add_argument("--introspection-client-secret")
    parser.add_argument("--required-scope", action="append", default=[])
    args = parser.parse_args()
    if args.verify == "introspection" and not (args.introspection_client_id and args.introspection_client_secret):
        parser.error("--verify introspection needs --introspection-client-id and --introspection-client-secret")
    args.issuer = args.issuer.rstrip("/")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    app = build_server(args, resource).streamable_http_app(
        stateless_http=(args.mode == "stateless"),
        json_response=(args.mode == "json"),
        host="127.0.0.1",
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    sock.listen(128)
    print(f"{ANNOUNCE}{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

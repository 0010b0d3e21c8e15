"""A local OIDC issuer for the access-control tests: a discovery document and a JWKS endpoint on
loopback, and RS256 tokens signed with its own key — what a Keycloak or Entra ID would serve,
for Feast's OIDC token parser to check signatures, expiry and roles against."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "test-key"


class OidcIssuer:
    """Start with `with OidcIssuer() as issuer:`; `issuer.discovery_url` is what the server is
    configured with, `issuer.token(...)` a bearer token."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        self._jwks = {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.discovery_url = f"{self.url}/.well-known/openid-configuration"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents = {
                    "/.well-known/openid-configuration": {
                        "issuer": issuer.url,
                        "authorization_endpoint": f"{issuer.url}/auth",
                        "token_endpoint": f"{issuer.url}/token",
                        "jwks_uri": f"{issuer.url}/jwks",
                    },
                    "/jwks": issuer._jwks,
                }
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body or {}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def token(self, user: str, roles: list[str], lifetime_s: int = 600, **claims: Any) -> str:
        """An RS256 token for `user` holding `roles` (Entra ID's top-level `roles` claim)."""
        now = int(time.time())
        payload = {"sub": user, "preferred_username": user, "roles": roles, "iss": self.url,
                   "iat": now, "exp": now + lifetime_s, **claims}  # fmt: skip
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def __enter__(self) -> OidcIssuer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

"""Built-in identity provider: signing keys in `auth`, OAuth2 token endpoint, JWKS."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import insert, select

from gateway.models import clients, signing_keys, users
from gateway.passwords import verify_secret
from shared.auth import mint_token
from shared.db import Database
from shared.problems import ProblemError
from shared.settings import Settings


class KeyStore:
    """The oldest active key signs; every active key is published in the JWKS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.kid: str | None = None
        self.private_key: Any = None
        self._jwks: dict[str, Any] = {"keys": []}

    async def load(self) -> None:
        async with self.db.transaction() as tx:
            # Several gateway processes may start at once on an empty table: one creates the key.
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext('motcua-signing-key'))")
            rows = await tx.fetch(
                select(signing_keys.c.kid, signing_keys.c.private_pem)
                .where(signing_keys.c.active).order_by(signing_keys.c.created_at, signing_keys.c.kid)
            )
            if not rows:
                pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                await tx.execute(insert(signing_keys).values(kid=uuid.uuid4().hex, private_pem=pem))
        if not rows:
            await self.load()
            return
        keys = [(row["kid"], serialization.load_pem_private_key(row["private_pem"].encode(), None))
                for row in rows]
        self.kid, self.private_key = keys[0]
        self._jwks = {"keys": [public_jwk(kid, key) for kid, key in keys]}

    def jwks(self) -> dict[str, Any]:
        return self._jwks


def public_jwk(kid: str, private_key: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


def _oauth_error(error: str, detail: str, status: int = 400) -> ProblemError:
    return ProblemError(status, "invalid_grant" if error == "invalid_grant" else "bad_request",
                        detail, title=("Không cấp được mã truy cập", "Token request refused"),
                        extra={"error": error})


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError as exc:
            raise _oauth_error("invalid_request", "JSON không hợp lệ / Malformed JSON") from exc
        if not isinstance(data, dict):
            raise _oauth_error("invalid_request", "Cần một object JSON / Expected a JSON object")
        return {k: str(v) for k, v in data.items()}
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    value = request.headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.get("/.well-known/jwks.json", tags=["auth"], summary="Public signing keys (JWKS)")
    async def jwks(request: Request) -> JSONResponse:
        store: KeyStore = request.app.state.keystore
        return JSONResponse(store.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @router.post(
        "/api/auth/v1/token", tags=["auth"],
        summary="OAuth2 token: password grant (people) or client_credentials (partners, systems)",
        openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {
                "grant_type": {"type": "string", "enum": ["password", "client_credentials"]},
                "username": {"type": "string", "example": "canbo.phuong"},
                "password": {"type": "string", "example": "demo-officer"},
                "client_id": {"type": "string", "example": "vnpost"},
                "client_secret": {"type": "string"},
            }, "required": ["grant_type"]}}}}},
    )
    async def token(request: Request) -> JSONResponse:
        form = await _form(request)
        grant = form.get("grant_type")
        db: Database = request.app.state.db
        if grant == "password":
            claims = await _password_claims(db, form)
        elif grant == "client_credentials":
            claims = await _client_claims(db, form, _basic_credentials(request))
        else:
            raise _oauth_error("unsupported_grant_type",
                               "grant_type phải là 'password' hoặc 'client_credentials' / "
                               "grant_type must be 'password' or 'client_credentials'")
        store: KeyStore = request.app.state.keystore
        access = mint_token(
            store.private_key, str(store.kid), issuer=settings.jwt_issuer,
            audience=settings.jwt_audience, ttl_seconds=settings.token_ttl_seconds, **claims,
        )
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer",
             "expires_in": settings.token_ttl_seconds, "role": claims["role"]},
            headers={"Cache-Control": "no-store"},
        )

    return router


async def _password_claims(db: Database, form: dict[str, str]) -> dict[str, Any]:
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        raise _oauth_error("invalid_request", "Cần username và password / username and password required")
    async with db.transaction() as tx:
        row = await tx.fetchrow(select(users).where(users.c.username == username))
    ok = row is not None and row["active"] and await asyncio.to_thread(
        verify_secret, password, row["password_hash"])
    if not ok or row is None:
        raise _oauth_error("invalid_grant", "Sai tên đăng nhập hoặc mật khẩu / Wrong username or password")
    return {"subject": row["subject"], "role": row["role"], "name": row["name"],
            "agency_code": row["agency_code"], "office_code": row["office_code"]}


async def _client_claims(
    db: Database, form: dict[str, str], basic: tuple[str, str] | None,
) -> dict[str, Any]:
    client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not client_id or not secret:
        raise _oauth_error("invalid_client", "Cần client_id và client_secret / client credentials required")
    async with db.transaction() as tx:
        row = await tx.fetchrow(select(clients).where(clients.c.client_id == client_id))
    ok = row is not None and row["active"] and await asyncio.to_thread(
        verify_secret, secret, row["secret_hash"])
    if not ok or row is None:
        raise _oauth_error("invalid_client", "Sai thông tin client / Wrong client credentials", 401)
    return {"subject": row["client_id"], "role": row["role"], "name": row["name"],
            "partner_code": row["partner_code"], "agency_code": row["agency_code"],
            "office_code": row["office_code"]}

"""Built-in identity provider: signing keys in `auth`, OAuth2 token endpoint, JWKS."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import insert, select

from gateway.models import clients, signing_keys, users
from gateway.passwords import dummy_hash, spend_as_verify, verify_secret
from gateway.rate_limit import RateLimiter
from shared.auth import mint_token
from shared.db import Database
from shared.problems import ProblemError, problem_responses
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


MAX_TOKEN_BODY = 16 * 1024  # a token request is a handful of short fields
MAX_FIELD = 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def _form(request: Request) -> dict[str, str]:
    """The token request's fields: form-encoded (RFC 6749) or a flat JSON object of strings, at most
    `MAX_TOKEN_BODY` bytes; anything else is a 4xx problem, never a parse of whatever was sent."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_TOKEN_BODY:
            raise ProblemError(413, "payload_too_large", f"Nội dung vượt quá {MAX_TOKEN_BODY} byte / "
                               f"Body larger than {MAX_TOKEN_BODY} bytes")
    media = _media_type(request)
    if not raw and not media:
        return {}
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:  # also a nesting deeper than orjson's limit
            raise _oauth_error("invalid_request", "JSON không hợp lệ / Malformed JSON") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise _oauth_error("invalid_request", "Cần một object JSON, mỗi trường là một chuỗi / "
                               "Expected a JSON object whose fields are strings")
        fields: dict[str, str] = data
    elif media == FORM_TYPE:
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _oauth_error("invalid_request", "Biểu mẫu không hợp lệ / Malformed form body") from exc
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise _oauth_error("invalid_request", "Mỗi tham số chỉ được gửi một lần / "
                               "A parameter is repeated")
    else:
        raise ProblemError(415, "unsupported_media_type",
                           f"Gửi {FORM_TYPE} hoặc application/json / Send {FORM_TYPE} or application/json")
    if any(len(v) > MAX_FIELD for v in fields.values()):
        raise _oauth_error("invalid_request", f"Mỗi trường tối đa {MAX_FIELD} ký tự / "
                           f"Each field is at most {MAX_FIELD} characters")
    return fields


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    value = request.headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(value[6:]).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


class SignInLimits:
    """Guessing is slowed down per address and per account, and a stranger cannot lock an owner out.

    Every attempt is taken from its address's budget and from the (account, address) budget before
    any hashing, and given back when it succeeds: what stays counted is failures (and attempts in
    flight, so a burst of parallel guesses is bounded too). Past the account's own budget of failures
    from all addresses together, an address that has already failed on that account this window is
    refused, while an address that has not (the owner's, usually) still signs in.
    """

    PER_ADDRESS = "30/minute"
    PER_ACCOUNT_AND_ADDRESS = "10/minute"
    PER_ACCOUNT = "100/hour"

    def __init__(self, storage_uri: str) -> None:
        self.address = RateLimiter(self.PER_ADDRESS, storage_uri)
        self.pair = RateLimiter(self.PER_ACCOUNT_AND_ADDRESS, storage_uri)
        self.account = RateLimiter(self.PER_ACCOUNT, storage_uri)

    def begin(self, account: str, address: str) -> None:
        """Before the credentials are checked: raises 429 when this attempt may not be made."""
        pair = f"{account}|{address}"
        has_failed = self.pair.used(pair) > 0
        wait = self.address.check(address)
        if wait is None:
            wait = self.pair.check(pair)
            if wait is not None:
                self.address.refund(address)
        if wait is None and has_failed:
            wait = self.account.blocked(account)
            if wait is not None:
                self.address.refund(address)
                self.pair.refund(pair)
        if wait is not None:
            raise ProblemError(429, "rate_limited",
                               f"Quá nhiều lần đăng nhập, thử lại sau {wait} giây / "
                               f"Too many sign-in attempts; retry in {wait} s",
                               headers={"Retry-After": str(wait)})

    def succeeded(self, account: str, address: str) -> None:
        self.address.refund(address)
        self.pair.refund(f"{account}|{address}")

    def failed(self, account: str) -> None:
        self.account.check(account)


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    limits = SignInLimits(settings.rate_limit_storage)
    dummy_hash()  # made now, not on the first unknown user's attempt

    @router.get("/.well-known/jwks.json", tags=["auth"], summary="Public signing keys (JWKS)")
    async def jwks(request: Request) -> JSONResponse:
        store: KeyStore = request.app.state.keystore
        return JSONResponse(store.jwks(), headers={"Cache-Control": "public, max-age=300"})

    @router.post(
        "/api/auth/v1/token", tags=["auth"], response_model=TokenOut,
        summary="OAuth2 token: password grant (people) or client_credentials (partners, systems)",
        openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {
                "grant_type": {"type": "string", "enum": ["password", "client_credentials"]},
                "username": {"type": "string", "example": "canbo.phuong"},
                "password": {"type": "string", "example": "demo-officer"},
                "client_id": {"type": "string", "example": "vnpost"},
                "client_secret": {"type": "string"},
            }, "required": ["grant_type"]}}}}},
        responses=problem_responses(400, 401, 413, 415, 429, notes={
            401: "Sai thông tin client / Wrong client credentials (client_credentials)",
            429: "Quá nhiều lần đăng nhập sai từ địa chỉ này hoặc cho tài khoản này (Retry-After) / "
                 "Too many failed sign-ins from this address or for this account (Retry-After)"}),
    )
    async def token(request: Request) -> JSONResponse:
        form = await _form(request)
        grant = form.get("grant_type")
        db: Database = request.app.state.db
        address = request.client.host if request.client else "-"
        if grant == "password":
            claims = await _password_claims(db, form, limits, address)
        elif grant == "client_credentials":
            claims = await _client_claims(db, form, _basic_credentials(request), limits, address)
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



class TokenOut(BaseModel):
    """An OAuth2 access token (RFC 6749 §5.1)."""

    access_token: str = Field(examples=["eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiJ9..."])
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="seconds", examples=[3600])
    role: str = Field(examples=["officer"])

async def _check(limits: SignInLimits, account: str, address: str, secret: str,
                 stored: str | None, active: bool) -> bool:
    """One scrypt whether or not the account exists or is active, under the sign-in limits."""
    limits.begin(account, address)
    if stored is None:
        await asyncio.to_thread(spend_as_verify, secret)
        ok = False
    else:
        ok = await asyncio.to_thread(verify_secret, secret, stored) and active
    if ok:
        limits.succeeded(account, address)
    else:
        limits.failed(account)
    return ok


async def _password_claims(db: Database, form: dict[str, str], limits: SignInLimits,
                           address: str) -> dict[str, Any]:
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        raise _oauth_error("invalid_request", "Cần username và password / username and password required")
    async with db.transaction() as tx:
        row = await tx.fetchrow(select(users).where(users.c.username == username))
    ok = await _check(limits, f"user:{username}", address, password,
                      None if row is None else row["password_hash"], row is not None and row["active"])
    if not ok or row is None:
        raise _oauth_error("invalid_grant", "Sai tên đăng nhập hoặc mật khẩu / Wrong username or password")
    return {"subject": row["subject"], "role": row["role"], "name": row["name"], "title": row["title"],
            "agency_code": row["agency_code"], "office_code": row["office_code"]}


async def _client_claims(
    db: Database, form: dict[str, str], basic: tuple[str, str] | None, limits: SignInLimits,
    address: str,
) -> dict[str, Any]:
    client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not client_id or not secret:
        raise _oauth_error("invalid_client", "Cần client_id và client_secret / client credentials required")
    if len(client_id) > MAX_FIELD or len(secret) > MAX_FIELD:
        raise _oauth_error("invalid_client", "Sai thông tin client / Wrong client credentials", 401)
    async with db.transaction() as tx:
        row = await tx.fetchrow(select(clients).where(clients.c.client_id == client_id))
    ok = await _check(limits, f"client:{client_id}", address, secret,
                      None if row is None else row["secret_hash"], row is not None and row["active"])
    if not ok or row is None:
        raise _oauth_error("invalid_client", "Sai thông tin client / Wrong client credentials", 401)
    return {"subject": row["client_id"], "role": row["role"], "name": row["name"],
            "partner_code": row["partner_code"], "agency_code": row["agency_code"],
            "office_code": row["office_code"]}

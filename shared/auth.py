"""JWT (RS256) verification against the issuer's JWKS, roles, agency scope, FastAPI guards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
import jwt
from fastapi import Depends, Request

from shared.problems import ProblemError

Role = Literal["citizen", "officer", "supervisor", "postal_partner", "gov_system", "kiosk", "admin"]
ROLES: tuple[str, ...] = (
    "citizen", "officer", "supervisor", "postal_partner", "gov_system", "kiosk", "admin",
)
STAFF_ROLES = ("officer", "supervisor", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: from a verified token."""

    subject: str
    role: str
    agency_code: str | None = None
    partner_code: str | None = None
    office_code: str | None = None
    name: str | None = None
    token_id: str | None = None
    title: str | None = None
    """Chức danh from the identity records (e.g. "Công chức Tư pháp - Hộ tịch"); forms print it under the name."""

    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def can_act_for_agency(self, agency_code: str) -> bool:
        """Officers and supervisors are scoped to one agency; admins see all."""
        return self.role == "admin" or (self.is_staff() and self.agency_code == agency_code)


def _unauthorized(detail: str, code: str = "invalid_token") -> ProblemError:
    return ProblemError(401, code, detail, headers={"WWW-Authenticate": 'Bearer realm="mot-cua"'})


def mint_token(
    private_key: Any, kid: str, *, issuer: str, audience: str, subject: str, role: str,
    ttl_seconds: int = 3600, **claims: Any,
) -> str:
    """Sign an access token (the built-in identity provider and tests use this)."""
    now = int(time.time())
    payload = {
        "iss": issuer, "aud": audience, "sub": subject, "role": role,
        "iat": now, "nbf": now - 5, "exp": now + ttl_seconds, "jti": uuid.uuid4().hex,
        **{k: v for k, v in claims.items() if v is not None},
    }
    return jwt.encode(payload, private_key, algorithm="RS256", headers={"kid": kid})


class TokenVerifier:
    """Verifies bearer tokens; keys come from a JWKS URL (cached) or a given key set."""

    def __init__(
        self, *, issuer: str, audience: str, jwks_url: str | None = None,
        jwks: dict[str, Any] | None = None, cache_seconds: int = 300,
        jwks_loader: Callable[[], Coroutine[Any, Any, dict[str, Any]]] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.jwks_loader = jwks_loader or (self._fetch_url if jwks_url else None)
        self.cache_seconds = cache_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[Principal, float]] = {}
        if jwks is not None:
            self.load_jwks(jwks)
            self._fetched_at = float("inf")

    def load_jwks(self, jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks.get("keys", []) if "kid" in k}

    async def _fetch_url(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(str(self.jwks_url))
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data

    async def _refresh(self, force: bool = False) -> None:
        if self.jwks_loader is None:
            return
        async with self._lock:
            fresh = time.monotonic() - self._fetched_at < self.cache_seconds
            recently = time.monotonic() - self._fetched_at < 2
            if (fresh and not force) or (force and recently):
                return
            try:
                self.load_jwks(await self.jwks_loader())
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
                if not self._keys:
                    raise ProblemError(
                        503, "upstream_unavailable",
                        "Không lấy được khóa xác thực / Cannot load the issuer's signing keys",
                    ) from exc

    async def _key_for(self, kid: str | None) -> Any:
        if time.monotonic() - self._fetched_at >= self.cache_seconds:
            await self._refresh()
        if kid not in self._keys:
            await self._refresh(force=True)
        if kid not in self._keys:
            raise _unauthorized("Khóa ký không xác định / Unknown signing key (kid)")
        return self._keys[kid]

    def cached(self, token: str) -> Principal | None:
        """The principal of a token this verifier has already accepted and that has not expired."""
        found = self._verified.get(token)
        if found is not None and found[1] > time.time():
            return found[0]
        return None

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized("Mã truy cập sai định dạng / Malformed token") from exc
        if header.get("alg") != "RS256":
            raise _unauthorized("Thuật toán ký không được chấp nhận / Only RS256 tokens are accepted")
        key = await self._key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]}, leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("Mã truy cập đã hết hạn / Token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized("Mã truy cập không dành cho hệ thống này / Wrong audience") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"Mã truy cập không hợp lệ / Invalid token: {exc}") from exc
        role = claims.get("role")
        if role not in ROLES:
            raise _unauthorized("Vai trò không hợp lệ / Unknown role in token")
        principal = Principal(
            subject=str(claims["sub"]), role=role, agency_code=claims.get("agency_code"),
            partner_code=claims.get("partner_code"), office_code=claims.get("office_code"),
            name=claims.get("name"), token_id=claims.get("jti"), title=claims.get("title"),
        )
        if len(self._verified) > 50_000:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]))
        return principal


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Cần header 'Authorization: Bearer <token>' / Use a Bearer token")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    token = bearer_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(token)
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise _unauthorized("Cần đăng nhập / Authentication required", code="unauthorized")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency factory: the caller must hold one of these roles (admin always passes)."""

    async def guard(principal: CurrentPrincipal) -> Principal:
        return check_roles(principal, *roles)

    return guard


def check_roles(principal: Principal, *roles: str) -> Principal:
    """The caller must hold one of these roles (admin always passes); for checks inside a route."""
    allowed = set(roles) | {"admin"}
    if principal.role not in allowed:
        raise ProblemError(
            403, "forbidden",
            f"Vai trò '{principal.role}' không được dùng chức năng này / "
            f"role '{principal.role}' may not call this; allowed: {', '.join(sorted(allowed))}",
        )
    return principal

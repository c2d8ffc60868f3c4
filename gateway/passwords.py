"""Password and client-secret hashing with the standard library's scrypt."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        cost = (int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    if algo != "scrypt":
        return False
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=cost[0], r=cost[1], p=cost[2], dklen=len(expected)
    )
    return hmac.compare_digest(digest, expected)


@functools.cache
def dummy_hash() -> str:
    """Made once per process (the gateway makes it at start-up, not on the first unknown user)."""
    return hash_secret(secrets.token_urlsafe(16))


def spend_as_verify(secret: str) -> bool:
    """The work of `verify_secret` against a hash no one knows: an unknown or inactive account answers
    after the same scrypt as a real one, so timing does not tell which usernames exist. Always False."""
    verify_secret(secret, dummy_hash())
    return False

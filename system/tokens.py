"""Signed purchase tokens: the only thing that opens a purchase.

A token is a JWT signed with HS256. The window processor issues one when it
admits a fan, and the ticketing service verifies it. The secret is shared by
those two services alone and is never logged.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jwt

from system.errors import ExpiredTokenError, InvalidTokenError, WrongFanError

ALGORITHM = "HS256"
ISSUER = "boxoffice-windows"
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class PurchaseClaims:
    """Grant of a valid token: this fan, this sale, this window, until expiry."""

    token_id: str  # jti; also the order id, so a token makes at most one order
    fan_id: str
    sale_id: str
    window_id: str
    expires_at: float  # epoch seconds
    synthetic: bool = False


def load_secret() -> bytes:
    """Read the signing secret from ``BOXOFFICE_TOKEN_SECRET`` or its file.

    ``BOXOFFICE_TOKEN_SECRET_FILE`` names a file that contains the secret; the
    embedded stack writes one with mode 0600.
    """
    value = os.environ.get("BOXOFFICE_TOKEN_SECRET")
    path = os.environ.get("BOXOFFICE_TOKEN_SECRET_FILE")
    if not value and path:
        value = Path(path).read_text().strip()
    if not value:
        raise InvalidTokenError(
            "No token secret is set. Set BOXOFFICE_TOKEN_SECRET or "
            "BOXOFFICE_TOKEN_SECRET_FILE for the window processor and the "
            "ticketing service."
        )
    secret = value.encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidTokenError(
            f"The token secret is {len(secret)} bytes long; use at least "
            f"{MIN_SECRET_BYTES} random bytes."
        )
    return secret


def issue(
    secret: bytes,
    *,
    fan_id: str,
    sale_id: str,
    window_id: str,
    expires_at: float,
    synthetic: bool = False,
) -> tuple[str, PurchaseClaims]:
    """Sign a new token and return it with its claims."""
    claims = PurchaseClaims(
        token_id=secrets.token_urlsafe(16),
        fan_id=fan_id,
        sale_id=sale_id,
        window_id=window_id,
        expires_at=expires_at,
        synthetic=synthetic,
    )
    payload = {
        "iss": ISSUER,
        "jti": claims.token_id,
        "sub": fan_id,
        "sale": sale_id,
        "win": window_id,
        "syn": synthetic,
        "iat": int(time.time()),
        "exp": int(expires_at),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def verify(secret: bytes, token: str, *, fan_id: str) -> PurchaseClaims:
    """Check the token's signature, expiry, issuer and fan; return its claims.

    Raises ``InvalidTokenError`` when the token is forged, tampered with or
    malformed, its subclass ``ExpiredTokenError`` when it has expired and
    ``WrongFanError`` when it was issued to another fan. Single use, the
    window and the sale are checked against the tables by the ticketing
    service.
    """
    claims = verify_signature(secret, token)
    if claims.fan_id != fan_id:
        raise WrongFanError("The purchase token was issued to another fan.")
    return claims


def verify_signature(secret: bytes, token: str) -> PurchaseClaims:
    """Check the token's signature, expiry and issuer, but not who presents it.

    For a page that opens with the token alone, where the fan's id is not
    known yet; a purchase must still go through ``verify``.
    """
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "jti", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ExpiredTokenError("The purchase token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidTokenError(f"The purchase token is invalid: {exc}") from exc
    try:
        return PurchaseClaims(
            token_id=str(payload["jti"]),
            fan_id=str(payload["sub"]),
            sale_id=str(payload["sale"]),
            window_id=str(payload["win"]),
            expires_at=float(payload["exp"]),
            synthetic=bool(payload.get("syn", False)),
        )
    except KeyError as exc:
        raise InvalidTokenError(f"The purchase token lacks claim {exc}.") from exc


def purchase_url(ticketing_url: str, token: str) -> str:
    """Return the URL a fan opens to buy: the ticketing service's purchase page."""
    return f"{ticketing_url.rstrip('/')}/purchase?{urlencode({'token': token})}"

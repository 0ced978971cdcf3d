"""Bearer tokens: RS256 JWTs. Production verifies them against the configured OIDC issuer's JWKS; the local
stack signs its own with a key pair generated under IOC_HOME/gateway/ (`ioc token`), never in the repo."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.gateway.auth.models import Principal, Role
from services.gateway.geo import unit_tree
from services.gateway.settings import GatewaySettings

PRIVATE_KEY = "jwt-signing-key.pem"


class AuthError(Exception):
    """The token is missing, invalid or does not describe a usable principal."""


def _load_or_create_key(key_dir: Path) -> rsa.RSAPrivateKey:
    path = key_dir / PRIVATE_KEY
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _kid(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal of verified claims; refuses a role without the unit or source it needs."""
    try:
        role = Role(claims.get("role", ""))
    except ValueError as exc:
        raise AuthError(f"unknown role {claims.get('role')!r}") from exc
    units = unit_tree().units
    p = Principal(
        sub=str(claims.get("sub", "")),
        role=role,
        name=str(claims.get("name", "")),
        district=claims.get("district"),
        commune=claims.get("commune"),
        source=claims.get("source"),
        types=claims.get("types"),
    )
    if not p.sub:
        raise AuthError("the token has no subject")
    if role is Role.district_operator and (p.district not in units or units[p.district].level != "district"):
        raise AuthError("a district_operator token needs `district`: one of the 9 district codes")
    if role is Role.commune_viewer and (p.commune not in units or units[p.commune].level != "commune"):
        raise AuthError("a commune_viewer token needs `commune`: a commune code")
    if role is Role.department_system and not p.source:
        raise AuthError("a department_system token needs `source`: the CloudEvents source it emits as")
    return p


class TokenService:
    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        self._jwks = None
        self._local_key: rsa.RSAPrivateKey | None = None
        if settings.oidc_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True, lifespan=300)
        else:
            self._local_key = _load_or_create_key(settings.effective_key_dir)
            self._local_kid = _kid(self._local_key.public_key())

    @property
    def issuer(self) -> str:
        return self.settings.oidc_issuer or self.settings.local_issuer

    def issue(self, principal: Principal, ttl_s: int = 12 * 3600) -> str:
        """A locally signed token (local stack and tests only)."""
        if self._local_key is None:
            raise AuthError(
                "tokens come from the OIDC issuer here; `ioc token` signs only for the local stack"
            )
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.settings.audience,
            "iat": now,
            "exp": now + ttl_s,
            **principal.model_dump(exclude_none=True, mode="json"),
        }
        return jwt.encode(claims, self._local_key, algorithm="RS256", headers={"kid": self._local_kid})

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
            else:
                assert self._local_key is not None
                key = self._local_key.public_key()
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256", "ES256"],
                audience=self.settings.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        return principal_from_claims(claims)

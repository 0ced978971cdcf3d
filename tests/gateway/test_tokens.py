"""Hostile tokens (pure, no servers): only an RS256/ES256 token signed by the configured key, for this issuer and
audience, unexpired and with a subject, is a principal. Everything else is an AuthError (the routes answer 401)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.gateway.auth.models import Principal, Role
from services.gateway.auth.service import AuthError, TokenService
from tests.gateway.conftest import make_settings


@pytest.fixture
def tokens(tmp_path) -> TokenService:
    return TokenService(make_settings(tmp_path))


def _claims(svc: TokenService, **over) -> dict:
    now = int(time.time())
    return {
        "iss": svc.issuer,
        "aud": svc.settings.audience,
        "iat": now,
        "exp": now + 600,
        "sub": "op-718",
        "role": "district_operator",
        "district": "718",
        **over,
    }


def _signed(svc: TokenService, claims: dict) -> str:
    return jwt.encode(claims, svc._local_key, algorithm="RS256", headers={"kid": svc._local_kid})


def test_a_proper_token_is_a_principal(tokens):
    assert tokens.verify(_signed(tokens, _claims(tokens))).district == "718"
    assert (
        tokens.verify(tokens.issue(Principal(sub="a", role=Role.province_admin))).role is Role.province_admin
    )


@pytest.mark.parametrize(
    "over",
    [
        {"iss": "https://evil.example/"},
        {"aud": "another-service"},
        {"exp": int(time.time()) - 60},
        {"sub": ""},
        {"role": "superuser"},
        {"district": "724000"},
    ],
    ids=["wrong-issuer", "wrong-audience", "expired", "no-subject", "unknown-role", "bad-district"],
)
def test_a_signed_token_with_wrong_claims_is_refused(tokens, over):
    with pytest.raises(AuthError):
        tokens.verify(_signed(tokens, _claims(tokens, **over)))


def test_missing_required_claims_are_refused(tokens):
    for claim in ("exp", "sub", "iss"):
        claims = _claims(tokens)
        del claims[claim]
        with pytest.raises(AuthError):
            tokens.verify(_signed(tokens, claims))


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_the_none_algorithm_and_key_confusion_are_refused(tokens):
    claims = _claims(tokens, role="province_admin")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(AuthError):
        tokens.verify(unsigned)
    # HS256 keyed with the gateway's public key (the classic RS/HS confusion)
    public_pem = tokens._local_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    head = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthError):
        tokens.verify(confused)
    # a tampered payload under a valid signature
    good = _signed(tokens, _claims(tokens))
    head, _, sig = good.split(".")
    with pytest.raises(AuthError):
        tokens.verify(f"{head}.{_b64(claims)}.{sig}")


def test_another_gateways_key_is_refused(tokens, tmp_path):
    other = TokenService(make_settings(tmp_path / "other"))
    with pytest.raises(AuthError):
        tokens.verify(other.issue(Principal(sub="x", role=Role.province_admin)))

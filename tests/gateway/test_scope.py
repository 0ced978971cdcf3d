"""Access: tokens, roles and scope on every route. A district-718 operator cannot read, stream or act on
district-724 data; every denied attempt is in the audit log."""

from __future__ import annotations

import pytest

from tests.gateway import seed
from tests.gateway.seed import C718, C724, D718, D724, TODAY

pytestmark = pytest.mark.clickhouse
IND = "transport.accidents"

# Every route that takes a unit (or reaches a unit's data), aimed at district 724 or one of its communes.
OTHER_DISTRICT = [
    ("GET", f"/v1/indicators/{IND}/series?unit={D724}"),
    ("GET", f"/v1/indicators/{IND}/series?unit={C724}"),
    ("GET", f"/v1/indicators/latest?unit={D724}"),
    ("GET", f"/v1/indicators/latest?unit={D724}&subtree=true"),
    ("GET", f"/v1/indicators/{IND}/ranking?within={D724}&level=commune"),
    ("GET", f"/v1/wall/tiles?unit={D724}"),
    ("GET", f"/v1/alerts?unit={D724}"),
    ("GET", f"/v1/alerts/open-by-field?unit={D724}"),
    ("GET", "/v1/alerts/a724"),
    ("GET", f"/v1/hotline/calls/live?unit={D724}"),
    ("GET", f"/v1/hotline/kpis?unit={D724}"),
    ("GET", f"/v1/stream?unit={D724}"),
    ("GET", "/v1/timeliness"),
    ("POST", "/v1/alerts/a724/acknowledge"),
    ("POST", "/v1/alerts/a724/resolve"),
]


@pytest.fixture
def seeded(reads_app):
    app, client, tokens = reads_app
    ch = app.state.gw.ch
    seed.active(ch)
    seed.values(
        ch,
        [
            seed.value(IND, u, TODAY, float(i + 1))
            for i, u in enumerate(["74", D718, C718, D724, C724, "719"])
        ],
    )
    seed.alerts(ch, [seed.alert_row("a718", C718, D718), seed.alert_row("a724", C724, D724)])
    seed.calls(
        ch, [seed.call_row("c718", C718, D718, "ringing"), seed.call_row("c724", C724, D724, "ringing")]
    )
    return app, client, tokens


def _denials(ch, actor):
    return ch.execute(
        "SELECT action, unit, resource FROM audit_log FINAL WHERE actor = %(a)s AND outcome = 'denied'",
        {"a": actor},
    )


@pytest.mark.parametrize(("method", "url"), OTHER_DISTRICT)
def test_a_718_operator_is_refused_724_data_and_the_attempt_is_audited(seeded, method, url):
    app, client, tokens = seeded
    h = tokens.headers("district_operator", district=D718, sub="op718")
    r = client.request(method, url, headers=h)
    assert r.status_code == 403, r.text
    assert len(_denials(app.state.gw.ch, "op718")) == 1


def test_without_a_unit_a_718_operator_sees_only_718_data(seeded):
    _app, client, tokens = seeded
    h = tokens.headers("district_operator", district=D718)
    assert {a["unit"] for a in client.get("/v1/alerts", headers=h).json()} == {C718}
    assert {c["unit"] for c in client.get("/v1/hotline/calls/live", headers=h).json()} == {C718}
    latest = client.get("/v1/indicators/latest", params={"indicator": IND}, headers=h).json()
    assert {x["unit"] for x in latest} == {D718, C718}
    units = client.get("/v1/units", headers=h).json()
    assert {u["district"] for u in units} == {D718} and len(units) == 15
    ranking = client.get(f"/v1/indicators/{IND}/ranking", headers=h).json()
    assert [u["unit"] for u in ranking["units"]] == [D718]
    counts = client.get("/v1/alerts/open-by-district", headers=h).json()
    assert {c["district"] for c in counts} == {D718}
    assert client.get("/v1/alerts/a718", headers=h).status_code == 200
    assert client.get(f"/v1/wall/tiles?unit={D718}", headers=h).status_code == 200


def test_a_commune_viewer_sees_its_commune_only_and_cannot_act(seeded):
    app, client, tokens = seeded
    h = tokens.headers("commune_viewer", commune=C718, sub="cv")
    assert [a["alert_id"] for a in client.get("/v1/alerts", headers=h).json()] == ["a718"]
    assert client.get(f"/v1/indicators/{IND}/series?unit={D718}", headers=h).status_code == 403
    assert client.post("/v1/alerts/a718/acknowledge", headers=h).status_code == 403
    assert len(_denials(app.state.gw.ch, "cv")) == 2


def test_viewers_and_department_systems_cannot_act_and_departments_cannot_read(seeded):
    _app, client, tokens = seeded
    viewer = tokens.headers("province_viewer")
    assert client.post("/v1/alerts/a718/acknowledge", headers=viewer).status_code == 403
    dept = tokens.headers("department_system", source="/so-tnmt/dat-dai")
    assert client.get("/v1/alerts", headers=dept).status_code == 403
    assert client.get(f"/v1/indicators/{IND}/series?unit=74", headers=dept).status_code == 403
    assert client.get("/v1/catalog/fields", headers=dept).status_code == 200


def test_missing_forged_and_expired_tokens_are_refused_and_audited(seeded, tmp_path):
    app, client, tokens = seeded
    assert client.get("/v1/alerts").status_code == 401
    assert client.get("/v1/alerts", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    # A token signed by another key (another gateway's) is refused.
    from services.gateway.auth.models import Principal, Role
    from services.gateway.auth.service import TokenService
    from tests.gateway.conftest import make_settings

    forged = TokenService(make_settings(tmp_path / "other")).issue(
        Principal(sub="x", role=Role.province_admin)
    )
    assert client.get("/v1/alerts", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = app.state.gw.tokens.issue(Principal(sub="x", role=Role.province_admin), ttl_s=-60)
    assert client.get("/v1/alerts", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    rows = app.state.gw.ch.execute(
        "SELECT count() FROM audit_log FINAL WHERE outcome = 'denied' AND actor = ''"
    )
    assert rows[0][0] == 4


def test_a_district_operator_token_must_name_a_district():
    from services.gateway.auth.service import AuthError, principal_from_claims

    with pytest.raises(AuthError):
        principal_from_claims({"sub": "x", "role": "district_operator"})
    with pytest.raises(AuthError):
        principal_from_claims({"sub": "x", "role": "district_operator", "district": C718})
    assert principal_from_claims({"sub": "x", "role": "district_operator", "district": D718}).district == D718


def test_every_v1_route_without_a_token_is_401(seeded):
    """Every API route of the OpenAPI spec (all of /v1) wants a token; the refusal is audited."""
    import re

    app, client, _ = seeded
    spec = app.openapi()
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for method in ops:
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            r = client.request(method.upper(), url, json={} if method == "post" else None)
            assert r.status_code == 401, f"{method.upper()} {path} without a token: {r.status_code}"
            checked += 1
    assert checked >= 15, spec["paths"].keys()

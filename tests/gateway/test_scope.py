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


# -- every route, enumerated from the app: a new route or unit parameter is covered without editing this file --
UNIT_PATTERN = r"^[0-9]{2,5}$"
PATH_VALUES = {"indicator": IND, "indicator_id": IND}


def _v1_operations(app):
    """(method, path template, path parameters, query parameters) of every /v1 operation."""
    for path, ops in app.openapi()["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            params = op.get("parameters", [])
            yield (
                method.upper(),
                path,
                [p for p in params if p["in"] == "path"],
                [p for p in params if p["in"] == "query"],
            )


def _urls(path: str, path_params: list[dict], alert_id: str) -> list[str]:
    """The path with each parameter filled in; an enum (the alert actions) gives one URL per value."""
    urls = [path]
    for p in path_params:
        name = p["name"]
        values = p.get("schema", {}).get("enum") or [
            alert_id if name == "alert_id" else PATH_VALUES.get(name, "x")
        ]
        urls = [u.replace("{" + name + "}", str(v)) for u in urls for v in values]
    return urls


def _is_unit(p: dict) -> bool:
    schema = p.get("schema", {})
    options = [schema, *schema.get("anyOf", [])]
    return any(o.get("pattern") == UNIT_PATTERN for o in options)


def test_every_unit_parameter_and_alert_of_another_district_is_403_and_audited(seeded):
    app, client, tokens = seeded
    ch = app.state.gw.ch
    h = tokens.headers("district_operator", district=D718, sub="op718-all")
    covered = []
    for method, path, path_params, query in _v1_operations(app):
        unit_params = [p for p in query if _is_unit(p)]
        alert = any(p["name"] == "alert_id" for p in path_params)
        for url in _urls(path, path_params, "a724" if alert else "a718"):
            targets = [(p["name"], u) for p in unit_params for u in (D724, C724)]
            if alert:
                targets.append((None, None))
            for name, unit in targets:
                before = len(_denials(ch, "op718-all"))
                r = client.request(method, url, params={name: unit} if name else None, headers=h, json={})
                assert r.status_code == 403, f"{method} {url} {name}={unit}: {r.status_code} {r.text[:200]}"
                denials = _denials(ch, "op718-all")
                assert len(denials) == before + 1, f"{method} {url} {name}={unit}: not audited"
                covered.append((method, path, name))
    paths = {p for _m, p, _n in covered}
    # the routes of the hand-written list above are all among them, and the alert actions
    assert {"/v1/indicators/{indicator}/series", "/v1/indicators/{indicator}/ranking", "/v1/wall/tiles",
            "/v1/alerts", "/v1/alerts/open-by-field", "/v1/alerts/{alert_id}", "/v1/alerts/{alert_id}/{action}",
            "/v1/hotline/calls/live", "/v1/hotline/kpis", "/v1/stream", "/v1/indicators/latest"} <= paths  # fmt: skip
    assert sum(p == "/v1/alerts/{alert_id}/{action}" for _m, p, _n in covered) == 5


@pytest.mark.parametrize(
    "role",
    [
        {"role": "province_viewer"},
        {"role": "district_operator", "district": D718},
        {"role": "commune_viewer", "commune": C718},
        {"role": "department_system", "source": "/so-tnmt/dat-dai"},
    ],
    ids=lambda r: r["role"],
)
def test_every_refusal_of_every_route_is_audited_and_viewers_never_act(seeded, role):
    """Each role on each /v1 route with in-scope values: whatever is refused is 403 with one audit row; a
    viewer or a department system acting on an alert is always refused."""
    app, client, tokens = seeded
    ch = app.state.gw.ch
    actor = f"every-{role['role']}"
    h = tokens.headers(sub=actor, **role)
    refused = 0
    for method, path, path_params, query in _v1_operations(app):
        if path == "/v1/stream":
            continue  # an endless answer when allowed; its refusals are covered above
        required = {p["name"]: IND if p["name"] == "indicator" else D718 for p in query if p.get("required")}
        for url in _urls(path, path_params, "a718"):
            before = len(_denials(ch, actor))
            r = client.request(method, url, params=required or None, headers=h, json={})
            assert r.status_code not in (401, 500), f"{method} {url}: {r.status_code} {r.text[:200]}"
            after = len(_denials(ch, actor))
            if r.status_code == 403:
                refused += 1
                assert after == before + 1, f"{method} {url}: 403 but not audited"
            else:
                assert after == before, f"{method} {url}: {r.status_code} but audited as denied"
            acting = method == "POST" and path.startswith("/v1/alerts/")
            if acting and role["role"] in ("province_viewer", "commune_viewer", "department_system"):
                assert r.status_code == 403, f"{role['role']} acted: {method} {url} → {r.status_code}"
    assert refused >= (5 if role["role"] != "district_operator" else 1)

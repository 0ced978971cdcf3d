"""requirements.lock (`make lock`), which `make lint` audits with pip-audit, pins every dependency of
pyproject.toml (runtime and dev) to a version its specifier allows: a dependency added without re-locking
would go unaudited."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ioccore.settings import REPO_ROOT


def _locked() -> dict[str, Version]:
    out = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        assert "==" in line and not line.startswith("-"), f"requirements.lock: not an exact pin: {line!r}"
        name, version = line.split("==", 1)
        out[canonicalize_name(name)] = Version(version)
    return out


def test_every_dependency_is_locked_within_its_specifier():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    assert "ioc" not in locked, "the project itself is not a dependency"
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in locked]
    assert not missing, f"run `make lock`: {missing}"
    outside = [
        f"{r.name}=={locked[canonicalize_name(r.name)]} vs {r.specifier}"
        for r in wanted
        if not r.specifier.contains(locked[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"run `make lock`: {outside}"

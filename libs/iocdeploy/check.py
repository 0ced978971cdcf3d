"""`ioc k8s check` (`make k8s-check`): every overlay of deploy/k8s renders with kustomize, every object
validates offline (Kubernetes schemas through kubernetes-validate; Strimzi resources through validators
generated from Strimzi's CRDs, the npm package @kubernetes-models/strimzi-kafka-operator pinned in
deploy/k8s/tools), and the policy scan (checkov) reports no failed check beyond the justified skips."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioccore.errors import OperationalError
from ioccore.settings import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.33.0"
TOOLS = K8S_DIR / "tools"
CHECKOV = REPO_ROOT / ".venv-policy" / "bin" / "checkov"
CRD_KINDS = {("kafka.strimzi.io/v1beta2", k) for k in ("Kafka", "KafkaNodePool", "KafkaTopic")}


@dataclass
class OverlayReport:
    overlay: str
    objects: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    policy_failed: list[str] = field(default_factory=list)
    policy_passed: int = 0


def kustomize_cmd() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    raise OperationalError(
        "k8s", "neither kubectl nor kustomize is on PATH", "install kubectl (Debian: kubernetes-client)"
    )


def render(overlay: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [*kustomize_cmd(), str(K8S_DIR / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise OperationalError(
            "k8s", f"kustomize failed for {overlay}: {proc.stderr.strip()}", "fix the overlay"
        )
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate_builtin(objs: list[dict[str, Any]]) -> list[str]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    problems = []
    for obj in objs:
        if (obj.get("apiVersion"), obj.get("kind")) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except ValidationError as exc:
            problems.append(f"{_name(obj)}: {exc.message} at {'/'.join(map(str, exc.path))}")
        except SchemaNotFoundError:
            problems.append(f"{_name(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
    return problems


def validate_crds(objs: list[dict[str, Any]]) -> list[str]:
    crs = [o for o in objs if (o.get("apiVersion"), o.get("kind")) in CRD_KINDS]
    if not crs:
        return []
    if not (TOOLS / "node_modules" / "@kubernetes-models" / "strimzi-kafka-operator").exists():
        raise OperationalError("k8s", "the Strimzi schemas are not installed", "run `make k8s-tools`")
    proc = subprocess.run(
        ["node", str(TOOLS / "validate-crs.mjs")], input=json.dumps(crs), capture_output=True, text=True,
        cwd=TOOLS, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        raise OperationalError(
            "k8s", f"CR validation crashed: {proc.stderr.strip()[:500]}", "run `make k8s-tools`"
        )
    return json.loads(proc.stdout)


def _skips() -> dict[str, str]:
    doc = yaml.safe_load((K8S_DIR / "policy-skips.yaml").read_text("utf-8"))
    return {s["id"]: s["why"] for s in doc["skips"]}


DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
# checkov offline: no policy download, no guideline mapping, no version check.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_VERSION_CHECK": "TRUE", "ENABLE_SCA": "false"}


def _checkov(path: Path, framework: str) -> subprocess.CompletedProcess[str]:
    if not CHECKOV.exists():
        raise OperationalError("k8s", "checkov is not installed", "run `make k8s-tools`")
    import os

    return subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", framework, "-o", "json", "--compact",
         "--skip-check", ",".join(sorted(_skips())), "--skip-download"],
        capture_output=True, text=True, check=False, env={**os.environ, **CHECKOV_ENV},
    )  # fmt: skip


def policy_scan(objs: list[dict[str, Any]]) -> tuple[int, list[str]]:
    with tempfile.TemporaryDirectory(prefix="ioc-k8s-") as tmp:
        path = Path(tmp) / "rendered.yaml"
        path.write_text(yaml.safe_dump_all(objs, sort_keys=False), encoding="utf-8")
        return _results(_checkov(path, "kubernetes"))


def dockerfile_scan() -> tuple[int, list[str]]:
    return _results(_checkov(DOCKERFILE, "dockerfile"))


def _results(proc: subprocess.CompletedProcess[str]) -> tuple[int, list[str]]:
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError as exc:
        raise OperationalError("k8s", f"checkov output unreadable: {proc.stderr.strip()[:300]}", "") from exc
    results = (out[0] if isinstance(out, list) else out).get("results", {}) if out else {}
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in results.get("failed_checks", [])
    ]
    return len(results.get("passed_checks", [])), failed


def check(overlays: tuple[str, ...] = OVERLAYS, *, policy: bool = True) -> list[OverlayReport]:
    reports = []
    for overlay in overlays:
        rep = OverlayReport(overlay)
        objs = render(overlay)
        rep.objects = len(objs)
        for o in objs:
            rep.kinds[o["kind"]] = rep.kinds.get(o["kind"], 0) + 1
        rep.problems = validate_builtin(objs) + validate_crds(objs)
        if policy:
            rep.policy_passed, rep.policy_failed = policy_scan(objs)
        reports.append(rep)
    if policy:
        rep = OverlayReport("Dockerfile", objects=1)
        rep.policy_passed, rep.policy_failed = dockerfile_scan()
        reports.append(rep)
    return reports

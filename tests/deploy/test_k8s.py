"""deploy/k8s: `make k8s-check` passes (every overlay renders, every object validates offline, the policy
scan passes); the checks reject what they must; topics follow contracts/topics.yaml; prod is highly
available and scaled to the partitions."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from ioccore.settings import REPO_ROOT, get_settings
from iocdeploy.check import policy_scan, render, validate_builtin, validate_crds
from iocdeploy.topics import TOPICS_FILE
from iocdeploy.topics import render as render_topics


@pytest.fixture(scope="module")
def prod() -> list[dict]:
    return render("prod")


def test_k8s_check_passes():
    proc = subprocess.run(
        [sys.executable, "-m", "ioccore.cli", "k8s", "check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ dev:" in proc.stdout and "✓ prod:" in proc.stdout and "✓ Dockerfile:" in proc.stdout


def test_validation_rejects_broken_objects(prod):
    deployment = copy.deepcopy(next(o for o in prod if o["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = "four"
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "Always"
    problems = validate_builtin([deployment])
    assert len(problems) == 1 and deployment["metadata"]["name"] in problems[0]

    topic = copy.deepcopy(next(o for o in prod if o["kind"] == "KafkaTopic"))
    topic["spec"]["partitions"] = "four"
    kafka = copy.deepcopy(next(o for o in prod if o["kind"] == "Kafka"))
    kafka["spec"]["kafka"]["listeners"] = {"name": "plain"}
    problems = validate_crds([topic, kafka])
    assert [p.split(":")[0] for p in problems] == [f"KafkaTopic/{topic['metadata']['name']}", "Kafka/ioc"]


def test_policy_scan_flags_a_privileged_root_container(prod):
    deployment = copy.deepcopy(next(o for o in prod if o["kind"] == "Deployment"))
    pod = deployment["spec"]["template"]["spec"]
    pod["securityContext"] = {}
    pod["containers"][0]["securityContext"] = {"privileged": True, "runAsUser": 0}
    _, failed = policy_scan([deployment])
    assert any(f.startswith("CKV_K8S_16 ") for f in failed)  # privileged
    assert any(f.startswith("CKV_K8S_23 ") for f in failed)  # root


def test_topics_are_generated_from_the_contract():
    assert TOPICS_FILE.read_text("utf-8") == render_topics(), "run `ioc k8s topics`"
    contract = yaml.safe_load((get_settings().contracts_dir / "topics.yaml").read_text("utf-8"))["topics"]
    generated = [d for d in yaml.safe_load_all(TOPICS_FILE.read_text("utf-8")) if d]
    assert [(t["spec"]["topicName"], t["spec"]["partitions"]) for t in generated] == [
        (t["name"], t["partitions"]) for t in contract
    ]


def test_prod_is_highly_available_and_workers_match_partitions(prod):
    by = {(o["kind"], o["metadata"]["name"]): o for o in prod}
    partitions = {
        t["name"]: t["partitions"]
        for t in yaml.safe_load((get_settings().contracts_dir / "topics.yaml").read_text("utf-8"))["topics"]
    }
    assert by[("KafkaNodePool", "kafka")]["spec"]["replicas"] == 3
    assert by[("Kafka", "ioc")]["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert all(o["spec"]["replicas"] == 3 for o in prod if o["kind"] == "KafkaTopic")
    assert by[("Deployment", "indicators")]["spec"]["replicas"] == partitions["ioc.events"]
    assert by[("Deployment", "alerts")]["spec"]["replicas"] == partitions["ioc.indicators"]
    assert by[("Deployment", "hotline")]["spec"]["replicas"] == partitions["ioc.hotline.calls"]
    assert ("StatefulSet", "clickhouse") not in by
    assert [by[("StatefulSet", f"clickhouse-shard{i}")]["spec"]["replicas"] for i in (1, 2)] == [2, 2]
    assert by[("StatefulSet", "clickhouse-keeper")]["spec"]["replicas"] == 3
    job = by[("Job", "clickhouse-migrations")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate", "--cluster", "ioc"]
    assert by[("HorizontalPodAutoscaler", "gateway")]["spec"]["minReplicas"] >= 2
    deployments = [o for o in prod if o["kind"] in ("Deployment", "StatefulSet")]
    pdbs = [o for o in prod if o["kind"] == "PodDisruptionBudget"]
    for d in deployments:  # every workload has probes, resources and a PodDisruptionBudget
        labels = d["spec"]["selector"]["matchLabels"]
        assert any(set(p["spec"]["selector"]["matchLabels"].items()) <= set(labels.items()) for p in pdbs), d
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert c.get("readinessProbe") and c.get("livenessProbe") and c["resources"]["limits"], d
            for e in c.get("env", []):  # passwords come from Secrets (valueFrom) or files, never values
                assert "value" not in e or "PASSWORD" not in e["name"] or e["name"].endswith("__FILE"), e
    secrets = [o for o in prod if o["kind"] == "Secret"]
    assert secrets == []  # secrets only by reference
    policies = [o for o in prod if o["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if p["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

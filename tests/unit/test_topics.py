"""topics.yaml is complete: code names no topic it lacks, and a broken list is refused."""

import ast
import re
from pathlib import Path

import pytest

from ioccore.errors import ContractError
from ioccore.settings import REPO_ROOT
from ioccore.topics import load_topics, topic

TOPIC_LITERAL = re.compile(r"^ioc\.[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$")
# Production code; tests name unlisted topics on purpose.
CODE_DIRS = ["libs", "services", "bench"]


def _string_constants(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_every_topic_name_in_code_is_in_topics_yaml():
    known = set(load_topics())
    unknown = []
    for d in CODE_DIRS:
        for path in (REPO_ROOT / d).rglob("*.py"):
            for line, value in _string_constants(path):
                if TOPIC_LITERAL.match(value) and value not in known:
                    unknown.append(f"{path.relative_to(REPO_ROOT)}:{line}: {value}")
    assert unknown == [], "topics used in code but missing from contracts/topics.yaml"


def test_the_scan_would_catch_an_unlisted_topic(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text('SEND_TO = "ioc.not.listed"\n')
    found = [v for _, v in _string_constants(sample) if TOPIC_LITERAL.match(v) and v not in load_topics()]
    assert found == ["ioc.not.listed"]


def test_topic_helper_refuses_unknown_names():
    assert topic("ioc.events") == "ioc.events"
    with pytest.raises(ContractError):
        topic("ioc.unknown.topic")


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "topics.yaml").write_text(body)
    load_topics.cache_clear()
    return tmp_path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("topics:\n  - name: a\n", "lacks"),
        (
            "topics:\n"
            + "  - {name: a, partitions: 1, key: k, value: v, retention_ms: 1, cleanup_policy: delete}\n" * 2,
            "duplicate",
        ),
        (
            "topics:\n  - {name: a, partitions: 0, key: k, value: v, retention_ms: 1, cleanup_policy: delete}\n",
            "partitions",
        ),
        (
            "topics:\n  - {name: a, partitions: 1, key: k, value: v, retention_ms: 1, cleanup_policy: shred}\n",
            "cleanup_policy",
        ),
    ],
)
def test_broken_topic_lists_are_refused(tmp_path, body, message):
    d = _write(tmp_path, body)
    try:
        with pytest.raises(ContractError, match=message):
            load_topics(d)
    finally:
        load_topics.cache_clear()

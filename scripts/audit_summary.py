"""One paragraph from pip-audit's JSON report (`make lint`): vulnerabilities found, packages audited, and
packages that could not be audited, so a registry that answers nothing is said plainly, not scrolled past.
Exit 1 when any vulnerability is found (pip-audit's own exit code says the same)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    deps = json.load(open(path, encoding="utf-8"))["dependencies"]
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for d in vulnerable:
        for v in d["vulns"]:
            fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
            print(f"✗ {d['name']} {d['version']}: {v['id']} (fixed in {fixes})")
    print(f"pip-audit: {len(audited)} of {len(deps)} locked packages audited, {len(vulnerable)} vulnerable")
    if skipped:
        print(f"  {len(skipped)} could not be audited, e.g. {skipped[0]['skip_reason']}")
        if not audited:
            print("  (the advisory source is unreachable from this machine: nothing was checked here)")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Dependency audit: every pinned package of requirements.lock checked against the PyPI vulnerability data with
pip-audit (a dev dependency). Fails naming each known vulnerability; skips with the reason when pip-audit is missing
or its vulnerability service cannot be reached (no answer, or no package found at all)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# Known and assessed: "ID": "why it does not apply". Empty: nothing is waived.
WAIVED: dict[str, str] = {}


def pip_audit() -> str:
    found = Path(sys.executable).parent / "pip-audit"
    if found.exists():
        return str(found)
    found = shutil.which("pip-audit")
    if not found:
        pytest.skip("pip-audit is not installed (a dev dependency)")
    return found


def test_no_pinned_dependency_has_a_known_vulnerability():
    command = [
        pip_audit(),
        "-r",
        str(ROOT / "requirements.lock"),
        "--disable-pip",
        "--no-deps",
        "-s",
        "pypi",
        "--progress-spinner",
        "off",
        "-f",
        "json",
    ]
    command += [arg for vuln in WAIVED for arg in ("--ignore-vuln", vuln)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit: the vulnerability service did not answer within 5 minutes")
    try:
        report = json.loads(result.stdout)
    except ValueError:
        if "ConnectionError" in result.stderr or "Max retries" in result.stderr:
            pytest.skip(f"pip-audit cannot reach its vulnerability service: {result.stderr.strip()[-300:]}")
        raise AssertionError(f"pip-audit failed:\n{result.stderr[-3000:]}")
    dependencies = report.get("dependencies", [])
    assert dependencies, "pip-audit read no dependency from requirements.lock"
    audited = [d for d in dependencies if not d.get("skip_reason")]
    if not audited:
        pytest.skip(
            f"pip-audit's vulnerability service knows none of the {len(dependencies)} packages (no access to "
            f"the PyPI JSON API from here?): {dependencies[0]['skip_reason']}"
        )
    vulnerable = [
        f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or []) or 'no release'})"
        for d in audited
        for v in d.get("vulns", [])
    ]
    assert not vulnerable, "known vulnerabilities:\n" + "\n".join(vulnerable)

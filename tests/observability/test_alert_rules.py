"""The alert rules file: valid for Prometheus, its promtool unit tests pass, every alert has a runbook section."""

import re
import subprocess
from pathlib import Path

import yaml

from tests.charts.chartlib import REPO_ROOT, tool

RULES = REPO_ROOT / "observability" / "alerts" / "sentiment.rules.yaml"
RULE_TESTS = REPO_ROOT / "observability" / "tests" / "sentiment.rules.test.yaml"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_rules_file_passes_promtool_check() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_unit_tested() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert {str(rule["alert"]) for rule in alerts()} <= tested


def test_every_alert_has_summary_and_runbook_section() -> None:
    headings = {line[3:].strip().lower() for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}
    for rule in alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert len(str(annotations["summary"])) > 30, rule["alert"]
        name = str(rule["alert"]).lower()
        assert name in headings, f"{rule['alert']} has no section in docs/runbook.md"
        assert str(annotations["runbook_url"]).endswith(f"#{name}")

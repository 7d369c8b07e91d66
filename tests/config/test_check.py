"""`gateway check` reports every problem of a file at once: each with its key path, a plain
message (no pydantic "Value error," prefix), "did you mean" for a misspelt key or choice;
exit status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config_text
from tests.config.test_load import GOOD as CONFIG

GOOD = (
    CONFIG
    + """
limits:
  default_key: {requests: ["60/minute"]}
"""
)

# (edits applied to GOOD, every problem line expected — exactly these, in any order)
CASES = {
    "secret-typo-and-bad-rate": (
        [
            ("${OPENAI_API_KEY}", "sk-literal-secret"),
            ("weight: 3", "wieght: 3"),
            ("60/minute", "60/minit"),
        ],
        [
            "providers.openai.api_key: secrets must not be written in the config file; "
            "use an environment reference such as ${API_KEY}",
            "models.smart.deployments[0].wieght: unknown key (did you mean 'weight'?)",
            "limits.default_key.requests: '60/minit' is not a rate; "
            "write e.g. '60/minute', '1000/day', '10 per second'",
        ],
    ),
    "kind-section-and-validator": (
        [
            ("kind: openai", "kind: opnai"),
            ("limits:", "limts:"),
            ("  mock: {kind: mock}", "  mock: {kind: mock}\n  ant: {kind: litellm}"),
        ],
        [
            "providers.openai.kind: Input should be 'openai', 'litellm', 'mock' or 'anthropic' "
            "(did you mean 'openai'?)",
            "providers.ant: litellm_provider is required for kind 'litellm'",
            "limts: unknown key (did you mean 'limits'?)",
        ],
    ),
    "missing-env-and-range-and-unknown-without-a-near-name": (
        [
            ("${OPENAI_API_KEY}", "${NOT_SET_ANYWHERE}"),
            ("weight: 3", "weight: -1"),
            ("  mock: {kind: mock}", "  mock: {kind: mock, zzz: 1}"),
        ],
        [
            "providers.openai.api_key: environment variable NOT_SET_ANYWHERE is not set",
            "models.smart.deployments[0].weight: Input should be greater than 0",
            "providers.mock.zzz: unknown key",
        ],
    ),
    "references-together": (
        [
            ("provider: mock,", "provider: mokc,"),
            (
                "limits:",
                "routes:\n  auto: {default: nowhere}\nlimits:",
            ),
        ],
        [
            "models.smart.deployments[1].provider: unknown provider 'mokc'",
            "routes.auto.default: unknown model alias 'nowhere'",
        ],
    ),
}


def edited(edits: list[tuple[str, str]]) -> str:
    text = GOOD
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(("edits", "expected"), CASES.values(), ids=CASES)
def test_every_problem_is_reported_at_once(
    edits: list[tuple[str, str]], expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(edited(edits), env={"OPENAI_API_KEY": "x"})
    assert sorted(info.value.problems) == sorted(expected)
    assert not any("Value error" in problem for problem in info.value.problems)


def test_check_command_prints_all_problems_and_exits_1(tmp_path: Path) -> None:
    edits, expected = CASES["secret-typo-and-bad-rate"]
    path = tmp_path / "bad.yaml"
    path.write_text(edited(edits))
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(path)],
        capture_output=True,
        text=True,
        env={"OPENAI_API_KEY": "x", "PATH": ""},
    )
    assert result.returncode == 1
    assert f"{path}: {len(expected)} problem(s)" in result.stderr
    for problem in expected:
        assert f"  {problem}" in result.stderr
    good = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "config/quickstart.yaml"],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr

"""Route decisions, as a table: each request shape lands on the rule (and target) it should."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.auth.principal import Principal
from gateway.config import ConfigError, load_config_text
from gateway.context import RequestContext
from gateway.routing.router import build_routers

CONFIG = """
providers: {mock: {kind: mock}}
models:
  fast: {deployments: [{provider: mock, model: f}]}
  smart: {deployments: [{provider: mock, model: s}]}
  coder: {deployments: [{provider: mock, model: c}]}
  json: {deployments: [{provider: mock, model: j}]}
routes:
  auto:
    rules:
      - {name: vip-team, when: {teams: [research]}, target: smart}
      - {name: classification, when: {headers: {X-Task: classification}}, target: fast}
      - {name: tagged-cheap, when: {metadata: {tier: cheap}}, target: fast}
      - {name: tools, when: {tools: true}, target: smart}
      - {name: json-out, when: {json_response: true, max_prompt_tokens: 1000}, target: json}
      - {name: code, when: {code: true}, target: coder}
      - {name: translate, when: {keywords: [translate, "in french"]}, target: fast}
      - {name: ticket, when: {pattern: 'ticket\\s+#\\d+'}, target: fast}
      - {name: long-chat, when: {min_turns: 6}, target: smart}
      - {name: short, when: {max_prompt_tokens: 20}, target: fast}
      - {name: huge, when: {min_prompt_tokens: 2000}, target: smart}
    default: smart
"""


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def decide(
    messages: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
    team: str | None = None,
    **body: Any,
) -> str:
    routers = build_routers(load_config_text(CONFIG).routes)
    ctx = RequestContext(
        request_id="r",
        endpoint="chat",
        body={"model": "auto", "messages": messages, **body},
        headers=headers or {},
        client_ip="",
        principal=Principal(key_id="k", team=team),
    )
    return asyncio.run(routers["auto"].decide(ctx)).header


MEDIUM = "Please summarise the quarterly report for the board in a few paragraphs " * 3


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        ("team wins first", {"messages": user("hi"), "team": "research"}, "smart (rule: vip-team)"),
        (
            "header, case-insensitive name",
            {"messages": user(MEDIUM), "headers": {"x-task": "classification"}},
            "fast (rule: classification)",
        ),
        (
            "metadata",
            {"messages": user(MEDIUM), "metadata": {"tier": "cheap"}},
            "fast (rule: tagged-cheap)",
        ),
        (
            "tools present",
            {"messages": user(MEDIUM), "tools": [{"type": "function"}]},
            "smart (rule: tools)",
        ),
        (
            "json response format",
            {"messages": user(MEDIUM), "response_format": {"type": "json_object"}},
            "json (rule: json-out)",
        ),
        ("code fence", {"messages": user(MEDIUM + "\n```py\nx = 1\n```")}, "coder (rule: code)"),
        (
            "code line",
            {"messages": user(MEDIUM + "\ndef parse(text):\n  pass")},
            "coder (rule: code)",
        ),
        ("keyword", {"messages": user(MEDIUM + " translate it")}, "fast (rule: translate)"),
        ("phrase keyword", {"messages": user(MEDIUM + " but IN FRENCH")}, "fast (rule: translate)"),
        ("keyword is a whole word", {"messages": user(MEDIUM + " translated")}, "smart (default)"),
        ("regex", {"messages": user(MEDIUM + " about ticket #4521")}, "fast (rule: ticket)"),
        ("many turns", {"messages": user(MEDIUM) * 6}, "smart (rule: long-chat)"),
        ("short prompt", {"messages": user("What is 2+2?")}, "fast (rule: short)"),
        ("huge prompt", {"messages": user("word " * 2000)}, "smart (rule: huge)"),
        (
            "only the newest user turn is matched",
            {"messages": [*user("translate"), *user(MEDIUM)]},
            "smart (default)",
        ),
        ("nothing matches", {"messages": user(MEDIUM)}, "smart (default)"),
    ],
)
def test_route_rules_first_match_wins(case: str, kwargs: dict[str, Any], expected: str) -> None:
    assert decide(**kwargs) == f"auto -> {expected}"


@pytest.mark.parametrize(
    ("routes", "problem"),
    [
        ("auto: {default: nope}", "routes.auto.default: unknown model alias 'nope'"),
        (
            "auto: {default: fast, rules: [{name: a, target: gone}]}",
            "routes.auto.rules[0].target: unknown model alias 'gone'",
        ),
        ("fast: {default: fast}", "routes.fast: the name is already a model alias"),
        ("auto: {rules: []}", "routes.auto.default: Field required"),
        (
            "auto: {default: fast, rules: [{name: a, target: fast, when: {pattern: '('}}]}",
            "routes.auto.rules[0].when.pattern: invalid regex",
        ),
        (
            "auto: {default: fast, rules: [{name: a, target: fast, when: {colour: red}}]}",
            "routes.auto.rules[0].when.colour: unknown key",
        ),
    ],
)
def test_bad_routes_are_named_by_key_path(routes: str, problem: str) -> None:
    text = f"""
providers: {{mock: {{kind: mock}}}}
models:
  fast: {{deployments: [{{provider: mock, model: f}}]}}
routes:
  {routes}
"""
    with pytest.raises(ConfigError) as info:
        load_config_text(text)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            "models: {fast: {deployments: [{provider: mock, model: f}], fallbacks: [fast]}}",
            "models.fast.fallbacks[0]: an alias cannot fall back to itself",
        ),
        (
            "models: {fast: {deployments: [{provider: mock, model: f}], fallbacks: [slow]}}",
            "models.fast.fallbacks[0]: unknown model alias 'slow'",
        ),
        (
            "experiments: {e: {applies_to: nope, variants: {a: {target: fast}}}}",
            "experiments.e.applies_to: unknown model alias or route 'nope'",
        ),
        (
            "experiments: {e: {applies_to: fast, variants: {a: {target: gone}}}}",
            "experiments.e.variants.a.target: unknown model alias or route 'gone'",
        ),
        (
            "experiments: {e: {applies_to: fast, variants: {a: {target: fast, params: {n: 2}}}}}",
            "experiments.e.variants.a: params: unknown n",
        ),
        (
            "experiments: {e: {applies_to: fast, control: z, variants: {a: {target: fast}}}}",
            "experiments.e: control: unknown variant 'z'",
        ),
    ],
)
def test_bad_fallbacks_and_experiments_are_named(section: str, problem: str) -> None:
    text = "providers: {mock: {kind: mock}}\n"
    if not section.startswith("models"):
        text += "models: {fast: {deployments: [{provider: mock, model: f}]}}\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text + section)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems

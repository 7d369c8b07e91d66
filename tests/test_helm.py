"""The Helm chart renders with real Helm (the helm-python-sdk wheel embeds Helm's Go
library, so no binary and no network), and every manifest validates against the
Kubernetes schemas (kubernetes-validate ships them); the ConfigMap is a valid gateway config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart
from helm_python.errors import HelmRenderError

from gateway.config import load_config_text

CHART = Path(__file__).resolve().parent.parent / "helm" / "gateway"
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
CRDS = {"ServiceMonitor"}  # Prometheus Operator kinds: not in the Kubernetes schemas

PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text())
VALUE_SETS = {
    "defaults": {},
    "production-example": PRODUCTION,
    "in-cluster-redis-and-monitoring": {
        "redis": {"enabled": True},
        "serviceMonitor": {
            "enabled": True,
            "bearerTokenSecret": {"name": "metrics", "key": "token"},
        },
    },
    "external-redis-secret-keys-fixed-replicas": {
        "redis": {"urlSecret": {"name": "redis", "key": "url"}},
        "secretEnv": [{"name": "OPENAI_API_KEY", "secret": "llm-keys", "key": "openai"}],
        "envFromSecrets": ["more-keys"],
        "replicaCount": 3,
        "autoscaling": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "dashboards": {"enabled": False},
        "config": {
            "providers": {
                "openai": {
                    "kind": "openai",
                    "base_url": "https://api.openai.com/v1",
                    "api_key": "${OPENAI_API_KEY}",
                }
            },
            "models": {"gpt": {"deployments": [{"provider": "openai", "model": "gpt-4o"}]}},
        },
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    rendered = Chart.load(CHART).render(values=values, name="gw", namespace="llm")
    docs = [doc for text in rendered.values() for doc in yaml.safe_load_all(text)]
    return [doc for doc in docs if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def gateway_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gw-gateway"
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_validates_against_kubernetes_schemas(
    values: dict[str, Any], version: str
) -> None:
    docs = render(values)
    for doc in docs:
        if doc["kind"] in CRDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any problem


def test_default_chart_is_one_hardened_pod_with_probes() -> None:
    docs = render({})
    kinds = by_kind(docs)
    assert set(kinds) >= {"Deployment", "Service", "ConfigMap"}
    assert "Secret" not in kinds  # secrets are referenced, never rendered
    # In-memory state: one pod (more would each enforce their own limits), so no HPA or PDB.
    assert "HorizontalPodAutoscaler" not in kinds and "PodDisruptionBudget" not in kinds
    assert gateway_deployment(docs)["spec"]["replicas"] == 1
    pod = gateway_deployment(docs)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"]["cpu"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["terminationGracePeriodSeconds"] > 30  # unready time + grace + margin


def test_config_map_holds_a_config_the_gateway_accepts() -> None:
    values = VALUE_SETS["external-redis-secret-keys-fixed-replicas"]
    docs = render(values)
    text = by_kind(docs)["ConfigMap"][0]["data"]["gateway.yaml"]
    env = {"OPENAI_API_KEY": "sk-test", "GATEWAY_REDIS_URL": "redis://redis:6379/0"}
    config = load_config_text(text, env)
    assert config.state.backend == "redis"
    assert config.server.host == "0.0.0.0" and config.server.unready_seconds == 5
    container = gateway_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
    assert refs["OPENAI_API_KEY"] == {"name": "llm-keys", "key": "openai"}
    assert refs["GATEWAY_REDIS_URL"] == {"name": "redis", "key": "url"}
    assert container["envFrom"] == [{"secretRef": {"name": "more-keys"}}]


def test_config_change_changes_the_pod_checksum_so_pods_roll() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = gateway_deployment(render(values))["spec"]["template"]["metadata"]
        return annotations["annotations"]["checksum/config"]

    changed = {"config": {"logging": {"level": "debug"}, "models": {}, "providers": {}}}
    assert checksum({}) == checksum({})
    assert checksum({}) != checksum(changed)


def test_service_monitor_scrapes_the_gateway_service_port() -> None:
    kinds = by_kind(render(VALUE_SETS["in-cluster-redis-and-monitoring"]))
    monitor = kinds["ServiceMonitor"][0]["spec"]
    service = next(s for s in kinds["Service"] if s["metadata"]["name"] == "gw-gateway")
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["endpoints"][0]["bearerTokenSecret"] == {"name": "metrics", "key": "token"}
    labels = service["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    # The in-cluster Redis is not selected by the gateway's Service.
    redis_pods = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "gw-gateway-redis")
    redis_labels = redis_pods["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= redis_labels.items()


SCALED = {
    "fixed-replicas": {"replicaCount": 3},
    "autoscaled": {"autoscaling": {"enabled": True, "maxReplicas": 5}},
}


@pytest.mark.parametrize("scaled", SCALED.values(), ids=SCALED.keys())
def test_several_pods_without_shared_state_are_refused_at_render_time(
    scaled: dict[str, Any],
) -> None:
    with pytest.raises(HelmRenderError, match="more than one replica without a shared state"):
        render(scaled)
    allowed = render({**scaled, "allowUnsharedState": True})
    with_redis = render({**scaled, "redis": {"url": "redis://redis:6379/0"}})
    for docs in (allowed, with_redis):
        assert gateway_deployment(docs)


@pytest.mark.parametrize(
    ("values", "image"),
    [
        ({}, "gateway:0.1.0"),  # what `make image` tags, at the chart's appVersion
        (
            {"image": {"repository": "registry.example.com/gw", "tag": "7"}},
            "registry.example.com/gw:7",
        ),
    ],
)
def test_image_comes_from_values(values: dict[str, Any], image: str) -> None:
    container = gateway_deployment(render(values))["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image


def test_production_example_shares_redis_autoscales_and_is_monitored() -> None:
    docs = render(PRODUCTION)
    kinds = by_kind(docs)
    assert kinds["HorizontalPodAutoscaler"][0]["spec"]["minReplicas"] == 3
    assert kinds["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 2
    assert kinds["ServiceMonitor"][0]["spec"]["endpoints"][0]["bearerTokenSecret"]["name"]
    text = kinds["ConfigMap"][0]["data"]["gateway.yaml"]
    env = {
        "OPENAI_API_KEY": "k1",
        "ANTHROPIC_API_KEY": "k2",
        "GATEWAY_METRICS_TOKEN": "k3",
        "GATEWAY_REDIS_URL": "redis://redis:6379/0",
    }
    config = load_config_text(text, env)
    assert config.state.backend == "redis"
    assert {p.kind for p in config.providers.values()} == {"openai", "litellm"}

"""The chart with a database: the URL comes from a Secret into the pods and the
pre-install/pre-upgrade migration Job, and the rendered config names it by ${DATABASE_URL}."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from gateway.config import load_config_text
from tests.test_helm import KUBERNETES_VERSIONS, by_kind, gateway_deployment, render

VALUES = {
    "redis": {"urlSecret": {"name": "redis", "key": "url"}},
    "database": {"urlSecret": {"name": "gateway-db", "key": "url"}},
    "config": {"state": {"key_prefix": "prod:"}},
}
SECRET_REF = {"secretKeyRef": {"name": "gateway-db", "key": "url"}}


def test_database_url_comes_from_the_secret_and_a_hook_job_migrates_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = by_kind(render(VALUES))
    pod = gateway_deployment(render(VALUES))["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"] == SECRET_REF
    (job,) = docs["Job"]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"]
    assert hooks == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["gateway", "db", "upgrade"]
    assert container["env"] == [{"name": "DATABASE_URL", "valueFrom": SECRET_REF}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    text = docs["ConfigMap"][0]["data"]["gateway.yaml"]
    state = yaml.safe_load(text)["state"]
    assert state == {
        "backend": "redis",
        "redis_url": "${GATEWAY_REDIS_URL}",
        "database": "${DATABASE_URL}",
        "key_prefix": "prod:",  # the user's own state settings are kept
    }
    monkeypatch.setenv("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/gateway")
    assert load_config_text(text).state.database is not None


def test_no_database_no_job() -> None:
    assert "Job" not in by_kind(render({}))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_with_a_database_validate(version: str) -> None:
    for doc in render(VALUES):
        kubernetes_validate.validate(doc, version, strict=True)

"""docker-compose.yml agrees with the code: services, commands, env vars, ports, topics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.bus.factory import topic_specs
from shared.events.catalogue import all_topics
from tests.harness import SERVICES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment must be a mapping"
    return {str(key): str(value) for key, value in environment.items()}


@pytest.mark.parametrize("name", sorted(SERVICES))
@pytest.mark.parametrize("role", ["api", "worker"])
def test_each_service_has_an_api_and_a_worker_wired_to_its_settings(
    compose: dict[str, Any], name: str, role: str
) -> None:
    service = compose["services"][f"{name}-{role}"]
    settings_class = SERVICES[name].settings_factory
    prefix = f"{name.upper()}_"
    assert service["command"] == ["python", "-m", name, role]
    environment = _environment(service)
    fields = set(settings_class.model_fields)
    for key in environment:
        assert key.startswith(prefix), f"{key} does not carry the {prefix} prefix"
        assert key.removeprefix(prefix).lower() in fields, f"{key} is not a setting of {name}"
    settings = settings_class(
        **{
            key.removeprefix(prefix).lower(): value
            for key, value in environment.items()
            if "${" not in value
        }
    )
    assert settings.bus == "kafka"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert environment[f"{prefix}DATABASE_URL"].endswith(f"@postgres:5432/vo_{name}")
    assert settings.http_port == settings_class().http_port  # the documented default port
    depends = service["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["kafka-topics"]["condition"] == "service_completed_successfully"
    if role == "api":
        assert service["ports"] == [f"{settings.http_port}:{settings.http_port}"]
        assert "healthz" in " ".join(service["healthcheck"]["test"])
    else:
        assert settings.worker_metrics_port is not None


def test_migrate_step_upgrades_every_service_database(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    command = " ".join(migrate["command"])
    for name in SERVICES:
        assert f"python -m {name} migrate" in command
        assert f"{name.upper()}_DATABASE_URL" in _environment(migrate)
    init = (ROOT / "deploy/postgres/init.sql").read_text()
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", init)) == sorted(
        f"vo_{name}" for name in SERVICES
    )


def test_topics_and_personal_data_retention_match_the_catalogue(compose: dict[str, Any]) -> None:
    script = compose["services"]["kafka-topics"]["command"][0]
    listed = re.search(r"for topic in ([^;]+);", script)
    assert listed is not None
    assert sorted(listed.group(1).split()) == sorted(all_topics())
    retention = re.findall(r"retention\.ms=(\d+)", script)
    worker_env = _environment(compose["services"]["ingest-worker"])
    configured = int(worker_env["INGEST_PERSONAL_DATA_RETENTION_MS"])
    assert retention and {int(value) for value in retention} == {configured}
    settings = SERVICES["ingest"].settings_factory(personal_data_retention_ms=configured)
    bounded = {spec.name for spec in topic_specs(settings) if spec.retention_ms == configured}
    assert bounded == set(all_topics())  # every topic of ours carries personal data today


def test_infrastructure_has_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "kafka"):
        assert "healthcheck" in compose["services"][name]
    kafka_env = _environment(compose["services"]["kafka"])
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper

"""docker-compose.yml agrees with the code: services, commands, env vars, ports, topics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.metrics import DispatchMetrics
from shared.bus.factory import topic_specs
from shared.events.catalogue import PERSONAL_DATA_TOPICS, all_topics
from shared.metrics import ServiceMetrics
from tests.support.harness import SERVICES

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
    # Settings shared by services (the calling rules) are read from unprefixed names.
    shared = {
        str(field.validation_alias): field_name
        for field_name, field in settings_class.model_fields.items()
        if isinstance(field.validation_alias, str)
    }
    for key in environment:
        if key in shared:
            continue
        assert key.startswith(prefix), f"{key} does not carry the {prefix} prefix"
        assert key.removeprefix(prefix).lower() in fields, f"{key} is not a setting of {name}"
    settings = settings_class.model_validate(
        {
            shared.get(key) or key.removeprefix(prefix).lower(): value
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
    loops = re.findall(r"for topic in ([^;]+);(.*?)done", script, re.DOTALL)
    assert sorted(topic for topics, _ in loops for topic in topics.split()) == sorted(all_topics())
    worker_env = _environment(compose["services"]["ingest-worker"])
    configured = int(worker_env["INGEST_PERSONAL_DATA_RETENTION_MS"])
    settings = SERVICES["ingest"].settings_factory(personal_data_retention_ms=configured)
    bounded = {spec.name for spec in topic_specs(settings) if spec.retention_ms == configured}
    # The loop that bounds retention creates exactly the topics carrying personal data; the
    # others (the directory's calendars) keep the broker's default.
    for topics, body in loops:
        retention = {int(value) for value in re.findall(r"retention\.ms=(\d+)", body)}
        assert retention in ({configured}, set())
        assert (set(topics.split()) <= bounded) == (retention == {configured}), topics
    assert bounded == {
        name for name in all_topics() if name.removesuffix(".dlq") in PERSONAL_DATA_TOPICS
    }
    assert bounded


def test_infrastructure_has_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "kafka"):
        assert "healthcheck" in compose["services"][name]
    kafka_env = _environment(compose["services"]["kafka"])
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def _metric_names() -> set[str]:
    """Every series name the services expose (shared and dispatch's own), plus ``up``."""
    names = {"up"}
    metrics = ServiceMetrics("any")
    DispatchMetrics("any", metrics.registry)
    for family in metrics.registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def _series(expression: str) -> set[str]:
    """Metric names of a PromQL expression (functions, grouping labels and matchers removed)."""
    expression = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expression)
    expression = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expression)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", expression))


def test_prometheus_scrapes_every_api_and_worker(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    # Workers are found by DNS (every replica of a scaled service is scraped on its own).
    targets |= {
        f"{name}:{found['port']}"
        for job in config["scrape_configs"]
        for found in job.get("dns_sd_configs", [])
        for name in found["names"]
    }
    expected = set()
    for name in SERVICES:
        settings_class = SERVICES[name].settings_factory
        expected.add(f"{name}-api:{settings_class().http_port}")
        worker_env = _environment(compose["services"][f"{name}-worker"])
        expected.add(f"{name}-worker:{worker_env[f'{name.upper()}_WORKER_METRICS_PORT']}")
        assert worker_env[f"{name.upper()}_HTTP_HOST"] == "0.0.0.0"  # reachable from Prometheus
    assert targets == expected
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    for rule_file in config["rule_files"]:
        rules = yaml.safe_load((ROOT / "deploy/prometheus" / Path(rule_file).name).read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                used = _series(rule["expr"])
                assert used <= _metric_names(), f"unknown metrics in {rule['alert']}"


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    provisioning = ROOT / "deploy/grafana/provisioning"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards/vo-leads.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/vo-leads.json").read_text())
    expressions = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if panel["datasource"]["uid"] == source["uid"]
    ]
    used = {name for expression in expressions for name in _series(expression)}
    assert used <= _metric_names(), f"unknown metrics: {used - _metric_names()}"
    for needed in (
        "sla_stage_duration_business_minutes_bucket",
        "sla_breaches_total",
        "outbox_backlog",
        "dead_letters",
        "events_consumed_total",
        "dispatch_webhook_attempts_total",
    ):
        assert needed in used, f"the dashboard does not show {needed}"
    # Labels of the SLA series never name a person: stage and source only.
    assert "lead_id" not in json.dumps(dashboard)

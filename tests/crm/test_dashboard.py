"""The provisioned Grafana dashboard shows the managers' figures crm exposes to Prometheus:
leads, first contact p50/p90, breaches, conversion and revenue per day, and the alerts (open
stages at risk or overdue, disabled webhooks), on series the services really expose."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dispatch.metrics import DispatchMetrics
from shared.metrics import ServiceMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/vo-leads.json"


def exposed() -> set[str]:
    """Every series the services expose (shared and dispatch's own), plus ``up``."""
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


def series(expression: str) -> set[str]:
    expression = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expression)
    expression = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expression)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", expression))


def test_the_dashboard_charts_the_managers_figures_and_alerts() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    by_title = {
        panel["title"]: {
            name for target in panel.get("targets", []) for name in series(target["expr"])
        }
        for panel in dashboard["panels"]
    }
    shown = set().union(*by_title.values())
    assert shown <= exposed(), f"unknown metrics: {shown - exposed()}"
    for needed in (
        "ingest_inputs_total",
        "sla_stage_duration_business_minutes_bucket",
        "sla_breaches_total",
        "sla_leads_closed_total",
        "sales_revenue_eur_total",
        "sla_open_stages",
        "seller_webhooks_disabled_total",
    ):
        assert needed in shown, f"the dashboard does not show {needed}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert "lead_id" not in json.dumps(dashboard)

"""Which path a new lead takes: its site rule (recognised by the ad reference), else its source
rule, else the settings' default. Pure: the rules are read by the caller."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from qualify.models import RuleScope
from qualify.settings import DirectIntent, QualifySettings
from shared.events.payloads import RoutingPath, SalesChannel

SOURCE: RuleScope = "source"
SITE: RuleScope = "site"


class Rule(Protocol):
    """What routing reads of a rule (a ``RoutingRule``, or a row of its columns)."""

    @property
    def scope(self) -> RuleScope: ...
    @property
    def key(self) -> str: ...
    @property
    def path(self) -> RoutingPath: ...
    @property
    def channel(self) -> SalesChannel | None: ...
    @property
    def intent(self) -> DirectIntent | None: ...
    @property
    def ad_ref_prefixes(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class RoutingDecision:
    path: RoutingPath
    site: str | None
    channel: SalesChannel
    intent: DirectIntent
    rule: str  # "site:<code>", "source:<source>" or "default": for logs and the lead's read

    @property
    def direct(self) -> bool:
        return self.path == "direct"


def site_rule_for(rules: Iterable[Rule], ad_ref: str | None) -> Rule | None:
    """The site rule with the longest ad-reference prefix of ``ad_ref`` (case-insensitive)."""
    if not ad_ref:
        return None
    ref = ad_ref.casefold()
    best: tuple[int, Rule] | None = None
    for rule in rules:
        if rule.scope != SITE:
            continue
        for prefix in rule.ad_ref_prefixes:
            if ref.startswith(prefix.casefold()) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rule)
    return best[1] if best is not None else None


def decide(
    settings: QualifySettings, rules: Iterable[Rule], source: str, ad_ref: str | None
) -> RoutingDecision:
    rules = list(rules)
    site_rule = site_rule_for(rules, ad_ref)
    source_rule = next(
        (rule for rule in rules if rule.scope == SOURCE and rule.key == source), None
    )
    rule = site_rule or source_rule
    site = site_rule.key if site_rule is not None else None
    if rule is None:
        return RoutingDecision(
            settings.routing_default_path,
            site,
            settings.direct_channel,
            settings.direct_intent,
            "default",
        )
    return RoutingDecision(
        rule.path,
        site,
        rule.channel or settings.direct_channel,
        rule.intent or settings.direct_intent,
        f"{rule.scope}:{rule.key}",
    )

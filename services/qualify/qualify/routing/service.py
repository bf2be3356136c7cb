"""Routing at receipt: the policy decides the lead's path where it would enter the queue.

On the ``direct`` path qualify records a machine qualification at once (intent and sales channel
from the rule or the settings, the site of a site rule, the lead's ad, no consent: none is known
at receipt) and publishes ``lead.qualified.v1`` with ``path: direct`` and the machine operator
id, so dispatch keeps one input. The lead stays recorded in qualify (closed as qualified), like
any other, for the first answer, the export and erasure.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from qualify.config_cache import ConfigView
from qualify.models import QueuedLead, RoutingRule, RuleScope
from qualify.policy import Policy
from qualify.problems import AdRefPrefixTaken
from qualify.qualification.schemas import MACHINE, QualificationIn
from qualify.qualification.service import record_qualification
from qualify.routing.policy import SITE, RoutingDecision, decide
from qualify.routing.repository import RoutingRuleRepository
from qualify.routing.schemas import SiteRuleIn, SourceRuleIn
from shared.auth import Principal
from shared.events.payloads import DIRECT_ROUTING_OPERATOR
from shared.outbox import Outbox

log = structlog.get_logger(__name__)

MACHINE_NAME = "direct routing"


async def route_at_receipt(
    session: AsyncSession,
    policy: Policy,
    lead: QueuedLead,
    *,
    outbox: Outbox,
    now: datetime,
    config: ConfigView | None = None,
) -> RoutingDecision:
    """Decide the lead's path by the rules (``config``'s: cached while valid; else read)."""
    if config is None:
        config = policy.config.at(None)
    rules = await config.rules(session)
    decision = decide(policy.settings, rules, lead.source, lead.ad_ref)
    if decision.site is not None:
        lead.site = decision.site  # a site rule tells qualify the lead's site at receipt
    if decision.direct:
        body = QualificationIn.model_validate(
            {"intent": decision.intent, "channel": decision.channel, "site": decision.site},
            context=MACHINE,
        )
        await record_qualification(
            session,
            outbox,
            lead,
            body,
            operator_id=DIRECT_ROUTING_OPERATOR,
            operator_name=MACHINE_NAME,
            now=now,
            path="direct",
        )
        log.info("lead.routed_direct", lead_id=lead.lead_id, rule=decision.rule)
    return decision


async def put_rule(
    session: AsyncSession,
    scope: RuleScope,
    key: str,
    body: SourceRuleIn,
    *,
    principal: Principal,
    now: datetime,
) -> RoutingRule:
    """Create or replace a rule. A site rule's ad-reference prefixes must be its own."""
    repository = RoutingRuleRepository.from_session(session)
    prefixes = body.ad_ref_prefixes if isinstance(body, SiteRuleIn) else []
    if prefixes:
        wanted = {prefix.casefold() for prefix in prefixes}
        for other in await repository.all():
            if other.scope != SITE or other.key == key:
                continue
            taken = wanted & {prefix.casefold() for prefix in other.ad_ref_prefixes}
            if taken:
                raise AdRefPrefixTaken(
                    "Another site's rule already claims one of these ad-reference prefixes.",
                    site=other.key,
                )
    rule = await repository.get(scope, key)
    if rule is None:
        rule = RoutingRule(scope=scope, key=key)
        repository.add(rule)
    rule.path = body.path
    rule.channel = body.channel
    rule.intent = body.intent
    rule.ad_ref_prefixes = list(prefixes)
    rule.updated_at = now
    rule.updated_by = principal.token_id
    await session.flush()
    log.info("routing.rule_set", scope=scope, key=key, path=body.path)
    return rule

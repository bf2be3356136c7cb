"""HTTP API of the routing policy: where leads of a source or a site go at receipt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from qualify.deps import Admin, Manager, SettingsDep
from qualify.problems import AdRefPrefixTaken, RoutingRuleNotFound
from qualify.routing import service
from qualify.routing.policy import SITE, SOURCE
from qualify.routing.repository import RoutingRuleRepository
from qualify.routing.schemas import (
    SITE_PATTERN,
    RoutingDefaults,
    RoutingPolicyOut,
    RuleOut,
    SiteRuleIn,
    SourceRuleIn,
)
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource

router = APIRouter(prefix="/v1/routing", tags=["routing"], responses=AUTH_PROBLEMS)

SiteCode = Annotated[str, Path(pattern=SITE_PATTERN)]


@router.get(
    "",
    response_model=RoutingPolicyOut,
    summary="The routing policy: the settings' default and every rule (managers read it)",
    responses=problem_responses(InvalidRequest),
)
async def get_policy(session: SessionDep, settings: SettingsDep, _: Manager) -> RoutingPolicyOut:
    rules = await RoutingRuleRepository.from_session(session).all()
    ordered = sorted(rules, key=lambda rule: (rule.scope != SITE, rule.key))
    return RoutingPolicyOut(
        default=RoutingDefaults(
            path=settings.routing_default_path,
            channel=settings.direct_channel,
            intent=settings.direct_intent,
        ),
        rules=[RuleOut.of(rule) for rule in ordered],
    )


@router.put(
    "/sources/{source}",
    response_model=RuleOut,
    summary="Set the path of a source's leads (admins)",
    responses=problem_responses(InvalidRequest),
)
async def put_source_rule(
    source: LeadSource, body: SourceRuleIn, session: SessionDep, principal: Admin, now: NowDep
) -> RuleOut:
    rule = await service.put_rule(session, SOURCE, source, body, principal=principal, now=now)
    return RuleOut.of(rule)


@router.put(
    "/sites/{site}",
    response_model=RuleOut,
    summary="Set the path of a site's leads, recognised by their ad references (admins)",
    responses=problem_responses(AdRefPrefixTaken, InvalidRequest),
)
async def put_site_rule(
    site: SiteCode, body: SiteRuleIn, session: SessionDep, principal: Admin, now: NowDep
) -> RuleOut:
    rule = await service.put_rule(session, SITE, site, body, principal=principal, now=now)
    return RuleOut.of(rule)


@router.delete(
    "/sources/{source}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a source's rule: its leads follow the default (admins)",
    responses=problem_responses(RoutingRuleNotFound, InvalidRequest),
)
async def delete_source_rule(source: LeadSource, session: SessionDep, _: Admin) -> None:
    if not await RoutingRuleRepository.from_session(session).delete(SOURCE, source):
        raise RoutingRuleNotFound()


@router.delete(
    "/sites/{site}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a site's rule: its leads follow their source's rule (admins)",
    responses=problem_responses(RoutingRuleNotFound, InvalidRequest),
)
async def delete_site_rule(site: SiteCode, session: SessionDep, _: Admin) -> None:
    if not await RoutingRuleRepository.from_session(session).delete(SITE, site):
        raise RoutingRuleNotFound()

"""FastAPI dependencies of dispatch: its settings, "now" from the runtime's clock, the callers'
roles, the seller a seller token belongs to, the step of the assignments' life cycle a request
works in, and the people directory a request changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from dispatch import models
from dispatch.assignments.step import Step
from dispatch.people.sellers import seller_of_caller
from dispatch.people.service import PeopleDirectory
from dispatch.problems import NotASeller
from dispatch.settings import DispatchSettings
from shared.api import NowDep, OutboxDep, RuntimeDep, SessionDep, require_roles, settings_of
from shared.auth import Principal

__all__ = [
    "Admin",
    "Manager",
    "NowDep",
    "OwnSeller",
    "PeopleDep",
    "Seller",
    "SettingsDep",
    "Staff",
    "StepDep",
]

SettingsDep = Annotated[DispatchSettings, Depends(settings_of)]

Admin = Annotated[Principal, Depends(require_roles("admin"))]
Manager = Annotated[Principal, Depends(require_roles("manager"))]
# Managers and the operators who handed the lead over (a lead's state, do-not-contact).
Staff = Annotated[Principal, Depends(require_roles("manager", "operator"))]
Seller = Annotated[Principal, Depends(require_roles("seller"))]


def request_step(
    session: SessionDep, settings: SettingsDep, outbox: OutboxDep, now: NowDep
) -> Step:
    """The request's step: its unit of work, at the runtime clock's "now"."""
    return Step(session, settings, outbox, now)


StepDep = Annotated[Step, Depends(request_step)]


async def seller_of_token(caller: Seller, session: SessionDep) -> models.Seller:
    """The directory's seller this caller acts for: the seller of their person record, or of a
    seller token issued before people existed (403 for any other caller, an admin included:
    "me" is a seller)."""
    seller = await seller_of_caller(session, caller)
    if seller is None:
        raise NotASeller("This token belongs to no seller of the directory.")
    return seller


OwnSeller = Annotated[models.Seller, Depends(seller_of_token)]


async def people_directory(
    session: SessionDep,
    outbox: OutboxDep,
    now: NowDep,
    settings: SettingsDep,
    runtime: RuntimeDep,
) -> PeopleDirectory:
    """The request's changes to people and tokens (its process forgets its cached tokens once
    they are committed)."""
    return PeopleDirectory(
        session, outbox, now, default_issuer=settings.oidc_issuer, tokens=runtime.tokens
    )


PeopleDep = Annotated[PeopleDirectory, Depends(people_directory)]

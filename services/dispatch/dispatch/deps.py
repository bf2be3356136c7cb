"""FastAPI dependencies of dispatch: its settings, "now" from the runtime's clock, the callers'
roles, the seller a seller token belongs to, and the step of the assignments' life cycle a
request works in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from dispatch import models
from dispatch.assignments.step import Step
from dispatch.directory.repository import DirectoryRepository
from dispatch.problems import NotASeller
from dispatch.settings import DispatchSettings
from shared.api import NowDep, OutboxDep, SessionDep, require_roles, settings_of
from shared.auth import Principal

__all__ = [
    "Admin",
    "Manager",
    "NowDep",
    "OwnSeller",
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
    """The directory's seller this seller token was issued to (403 for any other token, an
    admin's included: "me" is a seller)."""
    seller = await DirectoryRepository(session).seller_by_token(caller.token_id)
    if seller is None:
        raise NotASeller("This token belongs to no seller of the directory.")
    return seller


OwnSeller = Annotated[models.Seller, Depends(seller_of_token)]

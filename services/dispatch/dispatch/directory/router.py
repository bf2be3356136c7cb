"""Directory API (admin): sites, sellers, contact schedules and the vehicle stock."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from dispatch.clock import NowDep
from dispatch.directory.calendars import site_calendar
from dispatch.directory.repository import DirectoryRepository
from dispatch.directory.schemas import (
    ScheduleIn,
    ScheduleOut,
    SellerCreated,
    SellerIn,
    SellerOut,
    SellerPatch,
    SellerToken,
    SiteIn,
    SiteOut,
    VehicleIn,
    VehicleOut,
)
from dispatch.models import ContactSchedule, Seller, Site, VehicleStock, infra
from shared.api import SessionDep, require_roles
from shared.auth import Principal, store_token
from shared.errors import Conflict, NotFound

router = APIRouter(prefix="/v1", tags=["directory"])

Admin = Annotated[Principal, Depends(require_roles("admin"))]

PROBLEMS: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid token (problem+json)"},
    403: {"description": "Missing role (problem+json)"},
    404: {"description": "Unknown site or seller (problem+json)"},
    409: {"description": "Conflict with the current state (problem+json)"},
    422: {"description": "Invalid body (problem+json)"},
}


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _site_out(site: Site, now_open: bool | None = None) -> SiteOut:
    out = SiteOut.model_validate(site)
    return out.model_copy(update={"open_now": now_open})


@router.post("/sites", status_code=201, response_model=SiteOut, responses=PROBLEMS)
async def create_site(body: SiteIn, session: SessionDep, _: Admin, now: NowDep) -> SiteOut:
    repo = DirectoryRepository.from_session(session)
    if await repo.site(body.id) is not None:
        raise Conflict("A site has this id already.")
    await _check_manager(repo, body.manager_seller_id)
    site = Site(
        **body.model_dump(exclude={"closures"}),
        closures=[day.isoformat() for day in body.closures],
        created_at=now,
        updated_at=now,
    )
    session.add(site)
    await session.flush()
    return _site_out(site, site_calendar(site).is_open(now))


@router.put("/sites/{site_id}", response_model=SiteOut, responses=PROBLEMS)
async def replace_site(
    site_id: str, body: SiteIn, session: SessionDep, _: Admin, now: NowDep
) -> SiteOut:
    repo = DirectoryRepository.from_session(session)
    site = await repo.site(site_id)
    if site is None:
        raise NotFound("No site has this id.")
    if body.id != site_id:
        raise Conflict("The body's id differs from the path's.")
    await _check_manager(repo, body.manager_seller_id)
    for name, value in body.model_dump(exclude={"closures", "id"}).items():
        setattr(site, name, value)
    site.closures = [day.isoformat() for day in body.closures]
    site.updated_at = now
    return _site_out(site, site_calendar(site).is_open(now))


@router.get("/sites", response_model=list[SiteOut], responses=PROBLEMS)
async def list_sites(session: SessionDep, _: Admin, now: NowDep) -> list[SiteOut]:
    sites = await DirectoryRepository.from_session(session).sites()
    return [_site_out(site, site_calendar(site).is_open(now)) for site in sites]


@router.get("/sites/{site_id}", response_model=SiteOut, responses=PROBLEMS)
async def get_site(site_id: str, session: SessionDep, _: Admin, now: NowDep) -> SiteOut:
    site = await DirectoryRepository.from_session(session).site(site_id)
    if site is None:
        raise NotFound("No site has this id.")
    return _site_out(site, site_calendar(site).is_open(now))


async def _check_manager(repo: DirectoryRepository, seller_id: str | None) -> None:
    if seller_id is not None and await repo.seller(seller_id) is None:
        raise NotFound("No seller has the manager_seller_id.")


@router.post("/sellers", status_code=201, response_model=SellerCreated, responses=PROBLEMS)
async def create_seller(
    body: SellerIn, session: SessionDep, _: Admin, now: NowDep
) -> SellerCreated:
    repo = DirectoryRepository.from_session(session)
    if body.site_id is not None and await repo.site(body.site_id) is None:
        raise NotFound("No site has the site_id.")
    secret = body.webhook_secret
    if body.webhook_url is not None and secret is None:
        secret = new_webhook_secret()
    seller = Seller(
        id=str(uuid.uuid4()),
        display_name=body.display_name,
        mode=body.mode,
        site_id=body.site_id,
        skills=sorted(set(body.skills)),
        capacity=body.capacity,
        shifts=body.shifts,
        absences=[absence.model_dump(mode="json") for absence in body.absences],
        active=body.active,
        open_count=0,
        last_offered_at=None,
        token_id=None,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        webhook_secret=secret,
        webhook_disabled_at=None,
        webhook_disabled_reason=None,
        webhook_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(seller)
    await session.flush()
    created = SellerCreated.model_validate(seller)
    return created.model_copy(update={"webhook_secret": secret})


@router.get("/sellers", response_model=list[SellerOut], responses=PROBLEMS)
async def list_sellers(
    session: SessionDep,
    _: Admin,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=36, description="Last id of the page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SellerOut]:
    sellers = await DirectoryRepository.from_session(session).sellers(
        site_id=site_id, after=after, limit=limit
    )
    return [SellerOut.model_validate(seller) for seller in sellers]


@router.get("/sellers/{seller_id}", response_model=SellerOut, responses=PROBLEMS)
async def get_seller(seller_id: str, session: SessionDep, _: Admin) -> SellerOut:
    seller = await DirectoryRepository.from_session(session).seller(seller_id)
    if seller is None:
        raise NotFound("No seller has this id.")
    return SellerOut.model_validate(seller)


@router.patch("/sellers/{seller_id}", response_model=SellerOut, responses=PROBLEMS)
async def update_seller(
    seller_id: str, body: SellerPatch, session: SessionDep, _: Admin, now: NowDep
) -> SellerOut:
    seller = await DirectoryRepository.from_session(session).seller_for_update(seller_id)
    if seller is None:
        raise NotFound("No seller has this id.")
    changes = body.model_dump(exclude_unset=True)
    for name in ("display_name", "capacity", "shifts", "active"):
        if name in changes and changes[name] is not None:
            setattr(seller, name, changes[name])
    if body.skills is not None:
        seller.skills = sorted(set(body.skills))
    if body.absences is not None:
        seller.absences = [absence.model_dump(mode="json") for absence in body.absences]
    if "webhook_url" in changes:
        seller.webhook_url = str(body.webhook_url) if body.webhook_url else None
    if body.webhook_secret is not None:
        seller.webhook_secret = body.webhook_secret
    if seller.webhook_url and not seller.webhook_secret:
        seller.webhook_secret = new_webhook_secret()
    seller.updated_at = now
    return SellerOut.model_validate(seller)


@router.post(
    "/sellers/{seller_id}/token", status_code=201, response_model=SellerToken, responses=PROBLEMS
)
async def create_seller_token(seller_id: str, session: SessionDep, _: Admin) -> SellerToken:
    """A new bearer token with the seller role for this seller (replaces the previous one)."""
    seller = await DirectoryRepository.from_session(session).seller_for_update(seller_id)
    if seller is None:
        raise NotFound("No seller has this id.")
    token = "vo_" + secrets.token_urlsafe(32)
    seller.token_id = await store_token(
        session, infra.api_token, token=token, name=f"seller:{seller.id}", roles=("seller",)
    )
    return SellerToken(seller_id=seller.id, token=token)


@router.post("/schedules", status_code=201, response_model=ScheduleOut, responses=PROBLEMS)
async def create_schedule(
    body: ScheduleIn, session: SessionDep, _: Admin, now: NowDep
) -> ScheduleOut:
    repo = DirectoryRepository.from_session(session)
    if body.site_id is not None and await repo.site(body.site_id) is None:
        raise NotFound("No site has the site_id.")
    await _check_manager(repo, body.escalation_seller_id)
    if await repo.schedule_exists(source=body.source, site_id=body.site_id):
        raise Conflict("A schedule exists for this source and site.")
    schedule = ContactSchedule(id=str(uuid.uuid4()), created_at=now, **body.model_dump())
    session.add(schedule)
    await session.flush()
    return ScheduleOut.model_validate(schedule)


@router.get("/schedules", response_model=list[ScheduleOut], responses=PROBLEMS)
async def list_schedules(session: SessionDep, _: Admin) -> list[ScheduleOut]:
    rows = await DirectoryRepository.from_session(session).schedules()
    return [ScheduleOut.model_validate(row) for row in rows]


@router.put("/vehicles/{ad_ref}", response_model=VehicleOut, responses=PROBLEMS)
async def put_vehicle(
    ad_ref: Annotated[str, Path(max_length=100)],
    body: VehicleIn,
    session: SessionDep,
    _: Admin,
    now: NowDep,
) -> VehicleOut:
    """Where a vehicle (ad reference) is held: in-store leads for it go to that site."""
    repo = DirectoryRepository.from_session(session)
    if await repo.site(body.site_id) is None:
        raise NotFound("No site has the site_id.")
    vehicle = await repo.vehicle(ad_ref)
    if vehicle is None:
        vehicle = VehicleStock(
            ad_ref=ad_ref, site_id=body.site_id, make=body.make, sold_at=None, updated_at=now
        )
        session.add(vehicle)
    else:
        vehicle.site_id = body.site_id
        vehicle.make = body.make
        vehicle.updated_at = now
    await session.flush()
    return VehicleOut.model_validate(vehicle)

"""Directory API (admin): sites, sellers, contact schedules and the vehicle stock. A site's
calendar, when created or changed, is published (``site.calendar-changed.v1``); all of them can
be published again on request."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dispatch.deps import Admin, NowDep, PeopleDep, SettingsDep
from dispatch.directory.calendar_events import calendar_of, publish_site_calendar, republish_all
from dispatch.directory.calendars import site_calendar
from dispatch.directory.repository import DirectoryRepository
from dispatch.directory.schemas import (
    CalendarsPublished,
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
from dispatch.models import ContactSchedule, Seller, Site, VehicleStock
from dispatch.problems import DirectoryConflict, UnknownSeller, UnknownSite
from dispatch.settings import DispatchSettings
from shared.api import AUTH_PROBLEMS, OutboxDep, SessionDep, problem_responses
from shared.errors import InvalidRequest, invalid_parameter

router = APIRouter(prefix="/v1", tags=["directory"], responses=AUTH_PROBLEMS)

# A body naming an unknown site or seller (manager, escalation target) is a 404 too.
WRITE_PROBLEMS = problem_responses(
    UnknownSite, DirectoryConflict, InvalidRequest, s404="Unknown site or seller"
)
SITE_PROBLEMS = problem_responses(UnknownSite)
SITE_REF_PROBLEMS = problem_responses(UnknownSite, InvalidRequest)
SELLER_PROBLEMS = problem_responses(UnknownSeller, InvalidRequest)
LIST_PROBLEMS = problem_responses(InvalidRequest)


def _check_webhook_url(url: object, settings: DispatchSettings) -> str | None:
    """The URL to store, or a 422 naming ``webhook_url`` when it may not receive webhooks
    (``dispatch.webhooks.destinations``: a loopback, private or link-local address, a
    ``localhost`` name, credentials… unless the configuration allows the network)."""
    if url is None:
        return None
    text = str(url)
    refusal = settings.webhook_destinations().url_refusal(text)
    if refusal is not None:
        raise invalid_parameter("webhook_url", refusal, location="body", kind="url_refused")
    return text


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _site_out(site: Site, now_open: bool | None = None) -> SiteOut:
    out = SiteOut.model_validate(site)
    return out.model_copy(update={"open_now": now_open})


@router.post("/sites", status_code=201, response_model=SiteOut, responses=WRITE_PROBLEMS)
async def create_site(
    body: SiteIn, session: SessionDep, outbox: OutboxDep, _: Admin, now: NowDep
) -> SiteOut:
    repo = DirectoryRepository(session)
    if await repo.site(body.id) is not None:
        raise DirectoryConflict("A site has this id already.")
    await _check_manager(repo, body.manager_seller_id)
    site = Site(
        **body.model_dump(exclude={"closures"}),
        closures=sorted(day.isoformat() for day in body.closures),
        created_at=now,
        updated_at=now,
    )
    await repo.add(site)
    await publish_site_calendar(session, outbox, site, "created", now)
    return _site_out(site, site_calendar(site).is_open(now))


@router.put("/sites/{site_id}", response_model=SiteOut, responses=WRITE_PROBLEMS)
async def replace_site(
    site_id: str, body: SiteIn, session: SessionDep, outbox: OutboxDep, _: Admin, now: NowDep
) -> SiteOut:
    repo = DirectoryRepository(session)
    site = await repo.site(site_id)
    if site is None:
        raise UnknownSite("No site has this id.")
    if body.id != site_id:
        raise DirectoryConflict("The body's id differs from the path's.")
    await _check_manager(repo, body.manager_seller_id)
    calendar_before = calendar_of(site)
    for name, value in body.model_dump(exclude={"closures", "id"}).items():
        setattr(site, name, value)
    site.closures = sorted(day.isoformat() for day in body.closures)
    site.updated_at = now
    if calendar_of(site) != calendar_before:
        await publish_site_calendar(session, outbox, site, "updated", now)
    return _site_out(site, site_calendar(site).is_open(now))


@router.post("/calendars/republish", response_model=CalendarsPublished)
async def republish_calendars(
    session: SessionDep, outbox: OutboxDep, settings: SettingsDep, _: Admin, now: NowDep
) -> CalendarsPublished:
    """Publish every site's calendar and the full-web pool's again (``site.calendar-changed.v1``,
    change ``republished``), e.g. to build a new consumer from the events alone."""
    return CalendarsPublished(published=await republish_all(session, outbox, settings, now))


@router.get("/sites", response_model=list[SiteOut])
async def list_sites(session: SessionDep, _: Admin, now: NowDep) -> list[SiteOut]:
    sites = await DirectoryRepository(session).sites()
    return [_site_out(site, site_calendar(site).is_open(now)) for site in sites]


@router.get("/sites/{site_id}", response_model=SiteOut, responses=SITE_PROBLEMS)
async def get_site(site_id: str, session: SessionDep, _: Admin, now: NowDep) -> SiteOut:
    site = await DirectoryRepository(session).site(site_id)
    if site is None:
        raise UnknownSite("No site has this id.")
    return _site_out(site, site_calendar(site).is_open(now))


async def _check_manager(repo: DirectoryRepository, seller_id: str | None) -> None:
    if seller_id is not None and await repo.seller(seller_id) is None:
        raise UnknownSeller("No seller has the manager_seller_id.")


@router.post("/sellers", status_code=201, response_model=SellerCreated, responses=SITE_REF_PROBLEMS)
async def create_seller(
    body: SellerIn, session: SessionDep, settings: SettingsDep, _: Admin, now: NowDep
) -> SellerCreated:
    webhook_url = _check_webhook_url(body.webhook_url, settings)
    repo = DirectoryRepository(session)
    if body.site_id is not None and await repo.site(body.site_id) is None:
        raise UnknownSite("No site has the site_id.")
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
        webhook_url=webhook_url,
        webhook_secret=secret,
        webhook_disabled_at=None,
        webhook_disabled_reason=None,
        webhook_failures=0,
        created_at=now,
        updated_at=now,
    )
    await repo.add(seller)
    created = SellerCreated.model_validate(seller)
    return created.model_copy(update={"webhook_secret": secret})


@router.get("/sellers", response_model=list[SellerOut], responses=LIST_PROBLEMS)
async def list_sellers(
    session: SessionDep,
    _: Admin,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=36, description="Last id of the page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SellerOut]:
    sellers = await DirectoryRepository(session).sellers(site_id=site_id, after=after, limit=limit)
    return [SellerOut.model_validate(seller) for seller in sellers]


@router.get("/sellers/{seller_id}", response_model=SellerOut, responses=SELLER_PROBLEMS)
async def get_seller(seller_id: str, session: SessionDep, _: Admin) -> SellerOut:
    seller = await DirectoryRepository(session).seller(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    return SellerOut.model_validate(seller)


@router.patch("/sellers/{seller_id}", response_model=SellerOut, responses=SELLER_PROBLEMS)
async def update_seller(
    seller_id: str,
    body: SellerPatch,
    session: SessionDep,
    settings: SettingsDep,
    _: Admin,
    now: NowDep,
) -> SellerOut:
    webhook_url = _check_webhook_url(body.webhook_url, settings)
    seller = await DirectoryRepository(session).seller_for_update(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    changes = body.model_dump(exclude_unset=True)
    for name in ("display_name", "capacity", "shifts", "active"):
        if name in changes and changes[name] is not None:
            setattr(seller, name, changes[name])
    if body.skills is not None:
        seller.skills = sorted(set(body.skills))
    if body.absences is not None:
        seller.absences = [absence.model_dump(mode="json") for absence in body.absences]
    if "webhook_url" in changes:
        seller.webhook_url = webhook_url
    if body.webhook_secret is not None:
        seller.webhook_secret = body.webhook_secret
    if seller.webhook_url and not seller.webhook_secret:
        seller.webhook_secret = new_webhook_secret()
    seller.updated_at = now
    return SellerOut.model_validate(seller)


@router.post(
    "/sellers/{seller_id}/token",
    status_code=201,
    response_model=SellerToken,
    responses=SELLER_PROBLEMS,
)
async def create_seller_token(
    seller_id: str, session: SessionDep, people: PeopleDep, _: Admin
) -> SellerToken:
    """A new bearer token with the seller role for this seller's tool (shown once); the
    previous one is revoked. It belongs to the machine person acting for the seller (people
    API), so it works in every service and its revocation too."""
    seller = await DirectoryRepository(session).seller_for_update(seller_id)
    if seller is None:
        raise UnknownSeller("No seller has this id.")
    return SellerToken(seller_id=seller.id, token=await people.seller_tool_token(seller))


@router.post("/schedules", status_code=201, response_model=ScheduleOut, responses=WRITE_PROBLEMS)
async def create_schedule(
    body: ScheduleIn, session: SessionDep, _: Admin, now: NowDep
) -> ScheduleOut:
    repo = DirectoryRepository(session)
    if body.site_id is not None and await repo.site(body.site_id) is None:
        raise UnknownSite("No site has the site_id.")
    await _check_manager(repo, body.escalation_seller_id)
    if await repo.schedule_exists(source=body.source, site_id=body.site_id):
        raise DirectoryConflict("A schedule exists for this source and site.")
    schedule = ContactSchedule(id=str(uuid.uuid4()), created_at=now, **body.model_dump())
    await repo.add(schedule)
    return ScheduleOut.model_validate(schedule)


@router.get("/schedules", response_model=list[ScheduleOut])
async def list_schedules(session: SessionDep, _: Admin) -> list[ScheduleOut]:
    rows = await DirectoryRepository(session).schedules()
    return [ScheduleOut.model_validate(row) for row in rows]


@router.put("/vehicles/{ad_ref}", response_model=VehicleOut, responses=SITE_REF_PROBLEMS)
async def put_vehicle(
    ad_ref: Annotated[str, Path(max_length=100)],
    body: VehicleIn,
    session: SessionDep,
    _: Admin,
    now: NowDep,
) -> VehicleOut:
    """Where a vehicle (ad reference) is held: in-store leads for it go to that site."""
    repo = DirectoryRepository(session)
    if await repo.site(body.site_id) is None:
        raise UnknownSite("No site has the site_id.")
    vehicle = await repo.vehicle(ad_ref)
    if vehicle is None:
        vehicle = VehicleStock(
            ad_ref=ad_ref, site_id=body.site_id, make=body.make, sold_at=None, updated_at=now
        )
        await repo.add(vehicle)
    else:
        vehicle.site_id = body.site_id
        vehicle.make = body.make
        vehicle.updated_at = now
        await repo.flush()
    return VehicleOut.model_validate(vehicle)

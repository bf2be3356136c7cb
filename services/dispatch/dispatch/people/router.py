"""People API (admin): the people and machines who may call the services, their roles and
sites, their single sign-on identity, and their API tokens (issued shown once, revoked at once
everywhere). Changes are published on ``vo.access``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from dispatch.deps import Admin, PeopleDep
from dispatch.models import Person
from dispatch.people.repository import PeopleRepository, PersonToken
from dispatch.people.schemas import (
    PeoplePage,
    PeoplePublished,
    PersonIn,
    PersonOut,
    PersonPatch,
    SsoOut,
    TokenCreated,
    TokenIn,
    TokenOut,
)
from dispatch.problems import (
    PersonConflict,
    PersonInactive,
    UnknownPerson,
    UnknownSeller,
    UnknownToken,
)
from shared.api import AUTH_PROBLEMS, SessionDep, problem_responses
from shared.errors import InvalidRequest

router = APIRouter(prefix="/v1/people", tags=["people"], responses=AUTH_PROBLEMS)

WRITE_PROBLEMS = problem_responses(
    UnknownPerson,
    PersonConflict,
    InvalidRequest,
    s404="Unknown person, or unknown seller_id",
)
CREATE_PROBLEMS = problem_responses(
    UnknownSeller, PersonConflict, InvalidRequest, s404="Unknown seller_id"
)
PERSON_PROBLEMS = problem_responses(UnknownPerson)
ISSUE_PROBLEMS = problem_responses(UnknownPerson, PersonInactive, InvalidRequest)
REVOKE_PROBLEMS = problem_responses(UnknownToken, s404="Unknown person or token")


def person_out(person: Person) -> PersonOut:
    sso = (
        SsoOut(issuer=person.sso_issuer, subject=person.sso_subject)
        if person.sso_issuer is not None and person.sso_subject is not None
        else None
    )
    return PersonOut(
        id=person.id,
        display_name=person.display_name,
        kind=person.kind,
        roles=sorted(person.roles),
        sites=None if person.sites is None else sorted(person.sites),
        active=person.active,
        sso=sso,
        seller_id=person.seller_id,
        version=person.version,
        created_at=person.created_at,
        updated_at=person.updated_at,
        deactivated_at=person.deactivated_at,
    )


def token_out(token: PersonToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        person_id=token.person_id,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


@router.post("", status_code=201, response_model=PersonOut, responses=CREATE_PROBLEMS)
async def create_person(body: PersonIn, people: PeopleDep, _: Admin) -> PersonOut:
    """A person (or a machine) with roles, optional sites and single sign-on identity. With an
    identity, the person's id is the actor id the services already give that sign-in."""
    return person_out(await people.create(body))


@router.get("", response_model=PeoplePage, responses=problem_responses(InvalidRequest))
async def list_people(
    session: SessionDep,
    _: Admin,
    active: bool | None = None,
    seller_id: Annotated[str | None, Query(max_length=36)] = None,
    after: Annotated[str | None, Query(max_length=36, description="Last id of the page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PeoplePage:
    rows = await PeopleRepository(session).people(
        active=active, seller_id=seller_id, after=after, limit=limit + 1
    )
    items = [person_out(person) for person in rows[:limit]]
    return PeoplePage(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.post("/republish", response_model=PeoplePublished)
async def republish_people(people: PeopleDep, _: Admin) -> PeoplePublished:
    """Publish every person and token again (``change: republished``), e.g. for a service whose
    copy was rebuilt. The worker also does it at start and every
    ``DISPATCH_PEOPLE_REPUBLISH_INTERVAL_S``."""
    published = await people.republish()
    return PeoplePublished(people=published.people, tokens=published.tokens)


@router.get("/{person_id}", response_model=PersonOut, responses=PERSON_PROBLEMS)
async def get_person(person_id: str, session: SessionDep, _: Admin) -> PersonOut:
    person = await PeopleRepository(session).person(person_id)
    if person is None:
        raise UnknownPerson("No person has this id.")
    return person_out(person)


@router.patch("/{person_id}", response_model=PersonOut, responses=WRITE_PROBLEMS)
async def update_person(
    person_id: str, body: PersonPatch, people: PeopleDep, _: Admin
) -> PersonOut:
    """Change a person; `active: false` deactivates them (their tokens are revoked and their
    sign-ins refused at once, everywhere), `active: true` reactivates them (new tokens needed)."""
    return person_out(await people.update(person_id, body))


@router.get("/{person_id}/tokens", response_model=list[TokenOut], responses=PERSON_PROBLEMS)
async def list_tokens(person_id: str, people: PeopleDep, _: Admin) -> list[TokenOut]:
    """The person's tokens, revoked ones included (never the token, nor its hash)."""
    return [token_out(token) for token in await people.tokens(person_id)]


@router.post(
    "/{person_id}/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=ISSUE_PROBLEMS,
)
async def issue_token(
    person_id: str, people: PeopleDep, _: Admin, body: TokenIn | None = None
) -> TokenCreated:
    """A new bearer token of this person, shown once; it works in every service as soon as
    their workers applied it (dispatch at once)."""
    token, plain = await people.issue(person_id, body or TokenIn())
    return TokenCreated(**token_out(token).model_dump(), token=plain)


@router.delete(
    "/{person_id}/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses=REVOKE_PROBLEMS,
)
async def revoke_token(person_id: str, token_id: str, people: PeopleDep, _: Admin) -> Response:
    """Revoke a token: refused by dispatch from this answer on, by every other service as soon
    as its worker applied the event (measured in docs/operations.md). Revoking twice is fine."""
    await people.revoke(person_id, token_id)
    return Response(status_code=204)

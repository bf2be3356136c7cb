"""HTTP API of clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from crm.clients.actors import name_actors
from crm.clients.minimise import for_caller
from crm.clients.problems import LookupByContactOnly
from crm.clients.repository import ClientRepository
from crm.clients.schemas import ClientOut, ClientPage, ClientSplitOut, SplitIn
from crm.clients.split import split_client
from crm.deps import ClientReader, DataProtection, Manager
from crm.models import Client
from crm.privacy.problems import ContactOfAnotherClient
from crm.privacy.rectification import rectify_client
from crm.privacy.schemas import RectificationIn
from shared.api import AUTH_PROBLEMS, NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import InvalidRequest, NotFound
from shared.normalize import normalize_email, normalize_phone
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/clients", tags=["clients"], responses=AUTH_PROBLEMS)

_INVALID = problem_responses(InvalidRequest, s422="Invalid parameter")
_UNKNOWN = problem_responses(NotFound, s404="Unknown client")
_TAKEN = problem_responses(
    ContactOfAnotherClient, s409="The corrected phone or e-mail identifies another client"
)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid parameter: {field}",
        errors=[{"field": field, "location": "query", "type": "value_error", "message": message}],
    )


@router.get(
    "",
    response_model=ClientPage,
    summary="Find clients",
    description="Managers and the data-protection officer list clients, search names and "
    "read them whole. Operators look a client up by the exact phone or e-mail they hold "
    "(403 otherwise) and read the history without contact details (`withheld`).",
    responses={
        **_INVALID,
        **problem_responses(LookupByContactOnly, s403="Operators look up by phone or e-mail"),
    },
)
async def search_clients(
    session: SessionDep,
    caller: ClientReader,
    q: Annotated[
        str | None, Query(min_length=2, max_length=100, description="Part of the name")
    ] = None,
    phone: Annotated[str | None, Query(max_length=40, description="Any format, FR default")] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ClientPage:
    if not caller.reads_any_contact() and (q is not None or not (phone or email)):
        raise LookupByContactOnly(
            "Operators look a client up by exact phone or e-mail; listing clients and "
            "searching names are for managers and the data-protection officer."
        )
    phone_key = normalize_phone(phone) if phone else None
    if phone and phone_key is None:
        raise _invalid("phone", "not a valid phone number")
    email_key = normalize_email(email) if email else None
    if email and email_key is None:
        raise _invalid("email", "not a valid e-mail address")
    after = decode_cursor(cursor) if cursor else None
    rows = await ClientRepository.from_session(session).search(
        phone=phone_key, email=email_key, name=q, after=after, limit=limit + 1
    )
    items = [ClientOut.model_validate(row) for row in rows[:limit]]
    await name_actors(session, items)
    last = rows[limit - 1] if len(rows) > limit else None
    return ClientPage(
        items=[for_caller(item, caller) for item in items],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get(
    "/{client_id}",
    response_model=ClientOut,
    summary="A client with their timeline",
    responses={**_INVALID, **_UNKNOWN},
)
async def get_client(client_id: str, session: SessionDep, caller: ClientReader) -> ClientOut:
    client = await ClientRepository.from_session(session).get_with_timeline(client_id)
    if client is None:
        raise NotFound("No client has this id.")
    return for_caller(await _named(session, client), caller)


@router.post(
    "/{client_id}/split",
    response_model=ClientSplitOut,
    summary="Undo a wrong merge: move these leads to a new client",
    responses={**_INVALID, **_UNKNOWN},
)
async def split(
    client_id: str, body: SplitIn, session: SessionDep, principal: Manager, now: NowDep
) -> ClientSplitOut:
    client, new_client = await split_client(
        session, client_id=client_id, lead_ids=body.lead_ids, by=principal.token_id, now=now
    )
    repository = ClientRepository.from_session(session)
    session.expunge_all()  # reload both with their moved timelines
    reloaded = await repository.get_with_timeline(client.id)
    created = await repository.get_with_timeline(new_client.id)
    assert reloaded is not None
    assert created is not None
    answer = ClientSplitOut(
        client=ClientOut.model_validate(reloaded), new_client=ClientOut.model_validate(created)
    )
    await name_actors(session, (answer.client, answer.new_client))
    return answer


@router.patch(
    "/{client_id}",
    response_model=ClientOut,
    summary="Correct a client's names, phone or e-mail (GDPR Art. 16) everywhere",
    description=(
        "Only the fields sent change (``null`` removes one). crm's record and its leads' "
        "receipts take the new values, the timeline records who changed which fields (no "
        "values), and ``privacy.client-rectified.v1`` carries them to ingest, qualify and "
        "dispatch, which sends a signed ``lead.updated`` to the sellers' tools holding a lead. "
        "Managers and the data-protection officer."
    ),
    responses={**_INVALID, **_UNKNOWN, **_TAKEN},
)
async def rectify(
    client_id: str,
    body: RectificationIn,
    session: SessionDep,
    outbox: OutboxDep,
    principal: DataProtection,
    now: NowDep,
) -> ClientOut:
    await rectify_client(session, outbox, client_id=client_id, body=body, actor=principal, now=now)
    session.expunge_all()  # reload with the new timeline entry
    client = await ClientRepository.from_session(session).get_with_timeline(client_id)
    assert client is not None
    return await _named(session, client)


async def _named(session: AsyncSession, client: Client) -> ClientOut:
    answer = ClientOut.model_validate(client)
    await name_actors(session, [answer])
    return answer

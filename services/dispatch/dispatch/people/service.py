"""The people directory's changes: people (and machines) who may call the services, and their
API tokens. Every change is applied to dispatch's own copy in the request's transaction (so the
very next request here sees it) and published on ``vo.access`` for the other services, whose
workers apply it the same way (``shared.access``). Tokens are shown once, stored and published
as their SHA-256 only.

A person's every operation first locks the person's row: two changes of one person never
interleave, and a re-publication (which locks them all) never overtakes a revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.directory.repository import DirectoryRepository
from dispatch.models import Person, Seller, infra
from dispatch.people.repository import PeopleRepository, PersonToken
from dispatch.people.schemas import PersonIn, PersonPatch, SsoIdentity, TokenIn, check_coherent
from dispatch.problems import (
    PersonConflict,
    PersonInactive,
    UnknownPerson,
    UnknownSeller,
    UnknownToken,
)
from shared.access.apply import apply_person, apply_token_issued, apply_token_revoked
from shared.access.consumer import PERSON_CHANGED, TOKEN_ISSUED, TOKEN_REVOKED
from shared.auth import hash_token, new_token
from shared.db.session import after_commit
from shared.errors import InvalidRequest
from shared.events.access import PersonChange, PersonChangedV1, TokenIssuedV1, TokenRevokedV1
from shared.oidc import actor_id
from shared.outbox import Outbox
from shared.token_cache import TokenCache

SELLER_TOOL_LABEL = "seller's tool"


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid field: {field}",
        errors=[{"field": field, "location": "body", "type": "value_error", "message": message}],
    )


def person_event(person: Person, change: PersonChange, now: datetime) -> PersonChangedV1:
    sso_key = (
        actor_id(person.sso_issuer, person.sso_subject)
        if person.sso_issuer is not None and person.sso_subject is not None
        else None
    )
    return PersonChangedV1(
        person_id=person.id,
        version=person.version,
        kind=person.kind,
        name=person.display_name,
        roles=sorted(person.roles),
        sites=None if person.sites is None else sorted(person.sites),
        active=person.active,
        sso_key=sso_key,
        seller_id=person.seller_id,
        change=change,
        changed_at=now,
    )


def issued_event(token: PersonToken) -> TokenIssuedV1:
    return TokenIssuedV1(
        token_id=token.id,
        person_id=token.person_id,
        token_hash=token.token_hash,
        label=token.label,
        expires_at=token.expires_at,
        issued_at=token.created_at,
    )


@dataclass(frozen=True)
class Published:
    people: int
    tokens: int


class PeopleDirectory:
    def __init__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        now: datetime,
        *,
        default_issuer: str | None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.now = now
        self.default_issuer = default_issuer
        self.people = PeopleRepository(session)
        self._tokens = tokens
        self._forgetting = False

    # -- people ------------------------------------------------------------------------------

    async def create(self, body: PersonIn) -> Person:
        await self._check_seller(body.seller_id)
        issuer, subject = self._identity(body.sso)
        if issuer is not None and subject is not None:
            if await self.people.by_sso(issuer, subject) is not None:
                raise PersonConflict("Another person has this single sign-on identity.")
            # The actor id the services already record for this sign-in: kept as the person's.
            person_id = actor_id(issuer, subject)
            if await self.people.person(person_id) is not None:
                raise PersonConflict("A person has the id this identity gives.")
        else:
            person_id = str(uuid.uuid4())
        person = Person(
            id=person_id,
            display_name=body.display_name,
            kind=body.kind,
            roles=list(body.roles),
            sites=body.sites,
            active=True,
            sso_issuer=issuer,
            sso_subject=subject,
            seller_id=body.seller_id,
            version=1,
            created_at=self.now,
            updated_at=self.now,
            deactivated_at=None,
        )
        await self.people.add(person)
        await self._publish(person, "created")
        return person

    async def update(self, person_id: str, patch: PersonPatch) -> Person:
        person = await self._locked(person_id)
        changes = patch.model_dump(exclude_unset=True)
        before = _snapshot(person)
        if patch.display_name is not None:
            person.display_name = patch.display_name
        if patch.roles is not None:
            person.roles = list(patch.roles)
        if "sites" in changes:
            person.sites = patch.sites
        if "seller_id" in changes:
            await self._check_seller(patch.seller_id)
            person.seller_id = patch.seller_id
        if "sso" in changes:
            await self._move_identity(person, patch.sso)
        try:
            check_coherent(
                person.kind, person.roles, person.sso_subject is not None, person.seller_id
            )
        except ValueError as exc:
            raise _invalid("body", str(exc)) from None
        change: PersonChange = "updated"
        if patch.active is False and person.active:
            person.active, person.deactivated_at, change = False, self.now, "deactivated"
            for token_id in await self.people.active_token_ids(person.id):
                await self._revoke(person.id, token_id)
        elif patch.active is True and not person.active:
            person.active, person.deactivated_at, change = True, None, "reactivated"
        if _snapshot(person) == before:
            return person  # nothing changed: no new version, nothing published
        await self._publish(person, change)
        return person

    async def _move_identity(self, person: Person, sso: SsoIdentity | None) -> None:
        issuer, subject = self._identity(sso)
        if issuer is not None and subject is not None:
            holder = await self.people.by_sso(issuer, subject)
            if holder is not None and holder.id != person.id:
                raise PersonConflict("Another person has this single sign-on identity.")
        person.sso_issuer, person.sso_subject = issuer, subject

    # -- tokens ------------------------------------------------------------------------------

    async def tokens(self, person_id: str) -> list[PersonToken]:
        if await self.people.person(person_id) is None:
            raise UnknownPerson("No person has this id.")
        return await self.people.tokens(person_id)

    async def issue(self, person_id: str, body: TokenIn) -> tuple[PersonToken, str]:
        person = await self._locked(person_id)
        if not person.active:
            raise PersonInactive("This person is deactivated.")
        if body.expires_at is not None and body.expires_at <= self.now:
            raise _invalid("expires_at", "must be in the future")
        plain = new_token()
        token = PersonToken(
            id=str(uuid.uuid4()),
            person_id=person.id,
            label=body.label,
            token_hash=hash_token(plain),
            created_at=self.now,
            expires_at=body.expires_at,
            revoked_at=None,
        )
        event = issued_event(token)
        self._changed()
        await apply_token_issued(self.session, infra, event)
        await self.outbox.stage(self.session, TOKEN_ISSUED, person.id, event)
        return token, plain

    async def revoke(self, person_id: str, token_id: str) -> PersonToken:
        """Idempotent: a token revoked already stays as it was (nothing published again)."""
        await self._locked(person_id)
        await self._revoke(person_id, token_id)
        for token in await self.people.tokens(person_id):
            if token.id == token_id:
                return token
        raise UnknownToken("This person has no token with this id.")

    async def _revoke(self, person_id: str, token_id: str) -> None:
        event = TokenRevokedV1(token_id=token_id, person_id=person_id, revoked_at=self.now)
        known = {token.id for token in await self.people.tokens(person_id)}
        if token_id not in known:
            raise UnknownToken("This person has no token with this id.")
        self._changed()
        if await apply_token_revoked(self.session, infra, event):
            await self.outbox.stage(self.session, TOKEN_REVOKED, person_id, event)

    async def seller_tool_token(self, seller: Seller) -> str:
        """A new token for the seller's tool (replacing, and revoking, the previous one): held
        by the machine person acting for this seller, created on first use."""
        tool = await self.people.tool_of_seller(seller.id)
        if tool is None:
            tool = await self.create(
                PersonIn(
                    display_name=seller.display_name,
                    kind="machine",
                    roles=["seller"],
                    seller_id=seller.id,
                )
            )
        elif not tool.active:
            await self.update(tool.id, PersonPatch(active=True))
        tool = await self._locked(tool.id)
        previous = seller.token_id
        if previous is not None and previous in await self.people.active_token_ids(tool.id):
            await self._revoke(tool.id, previous)
        elif previous is not None:
            # A token issued before people existed: stored in dispatch only, revoked here only.
            legacy = TokenRevokedV1(token_id=previous, person_id=tool.id, revoked_at=self.now)
            self._changed()
            await apply_token_revoked(self.session, infra, legacy)
        token, plain = await self.issue(tool.id, TokenIn(label=SELLER_TOOL_LABEL))
        seller.token_id = token.id
        return plain

    # -- re-publication ----------------------------------------------------------------------

    async def republish(self) -> Published:
        """Every person and every token's state again (a new service, or one rebuilt, learns
        them from the events alone)."""
        people = await self.people.all_for_update()
        tokens = 0
        for person in people:
            await self.outbox.stage(
                self.session,
                PERSON_CHANGED,
                person.id,
                person_event(person, "republished", self.now),
            )
            for token in await self.people.tokens(person.id):
                # A revoked token only as revoked: a service that never had it cannot use it.
                if token.revoked_at is None:
                    event: TokenIssuedV1 | TokenRevokedV1 = issued_event(token)
                    await self.outbox.stage(self.session, TOKEN_ISSUED, person.id, event)
                else:
                    event = TokenRevokedV1(
                        token_id=token.id, person_id=person.id, revoked_at=token.revoked_at
                    )
                    await self.outbox.stage(self.session, TOKEN_REVOKED, person.id, event)
                tokens += 1
        return Published(people=len(people), tokens=tokens)

    # -- helpers -----------------------------------------------------------------------------

    async def _locked(self, person_id: str) -> Person:
        person = await self.people.person_for_update(person_id)
        if person is None:
            raise UnknownPerson("No person has this id.")
        return person

    def _changed(self) -> None:
        """Once committed, this process forgets what it cached: its next request sees the
        change even before the database's notification reaches it."""
        tokens = self._tokens
        if tokens is None or self._forgetting:
            return
        self._forgetting = True

        async def forget() -> None:
            tokens.forget_all()

        after_commit(self.session, forget)

    async def _check_seller(self, seller_id: str | None) -> None:
        if (
            seller_id is not None
            and await DirectoryRepository(self.session).seller(seller_id) is None
        ):
            raise UnknownSeller("No seller has the seller_id.")

    def _identity(self, sso: SsoIdentity | None) -> tuple[str | None, str | None]:
        if sso is None:
            return None, None
        issuer = sso.issuer or self.default_issuer
        if issuer is None:
            raise _invalid("sso.issuer", "needed: DISPATCH_OIDC_ISSUER is not set")
        return issuer, sso.subject

    async def _publish(self, person: Person, change: PersonChange) -> None:
        if change != "created":
            person.version += 1
            person.updated_at = self.now
        event = person_event(person, change, self.now)
        self._changed()
        await self.session.flush()
        await apply_person(self.session, infra, event)
        await self.outbox.stage(self.session, PERSON_CHANGED, person.id, event)


def _snapshot(person: Person) -> tuple[Any, ...]:
    return (
        person.display_name,
        sorted(person.roles),
        None if person.sites is None else sorted(person.sites),
        person.active,
        person.sso_issuer,
        person.sso_subject,
        person.seller_id,
    )

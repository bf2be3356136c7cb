"""The routes the outside world calls without a token: the one-click unsubscribe link of our
e-mails (RFC 8058; the lead's signed token is the credential), and the SMS provider's delivery
receipts (a secret in the path: the provider does not sign its calls)."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from qualify.deps import ComposerDep, ReceiptCallbackDep
from qualify.leads.repository import LeadRepository
from qualify.messages.opt_out import opt_out
from qualify.messages.problems import UnknownLink
from qualify.messages.receipts import apply_receipt
from shared.api import NowDep, OutboxDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.messaging.sms.provider import InvalidProviderPayload

router = APIRouter(tags=["public"])


def _page(text: str, form_action: str | None = None) -> HTMLResponse:
    form = (
        f'<form method="post" action="{html.escape(form_action)}">'
        '<button type="submit">Me désabonner</button></form>'
        if form_action
        else ""
    )
    return HTMLResponse(
        '<!DOCTYPE html>\n<html lang="fr"><meta charset="utf-8">'
        f"<title>Désabonnement</title><body><p>{html.escape(text)}</p>{form}</body></html>\n"
    )


@router.get(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="The unsubscribe page (a GET never unsubscribes: link scanners follow links)",
    responses=problem_responses(UnknownLink),
)
async def unsubscribe_page(token: str, request: Request, composer: ComposerDep) -> HTMLResponse:
    if composer.tokens.lead_of_token(token) is None:
        raise UnknownLink("This link is unknown.")
    return _page("Vous ne souhaitez plus recevoir nos e-mails ?", form_action=str(request.url.path))


@router.post(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="One-click unsubscribe (RFC 8058): no more e-mails to the lead's addresses",
    responses=problem_responses(UnknownLink),
)
async def unsubscribe(
    token: str, session: SessionDep, composer: ComposerDep, outbox: OutboxDep, now: NowDep
) -> HTMLResponse:
    lead_id = composer.tokens.lead_of_token(token)
    lead = await LeadRepository.from_session(session).get(lead_id) if lead_id else None
    if lead is None:
        raise UnknownLink("This link is unknown.")
    key = composer.settings.privacy_hmac_key.get_secret_value().encode()
    await opt_out(session, lead, "email", via="one_click", key=key, outbox=outbox, now=now)
    return _page("C'est noté : vous ne recevrez plus nos e-mails.")


@router.get(
    "/v1/sms/delivery-receipts/{secret}",
    status_code=200,
    summary="The SMS provider's delivery receipt (OVH: id and dlr in the query string)",
    responses=problem_responses(UnknownLink, InvalidRequest),
)
async def delivery_receipt(
    secret: str,
    request: Request,
    session: SessionDep,
    callback: ReceiptCallbackDep,
    outbox: OutboxDep,
    now: NowDep,
) -> Response:
    if not callback.accepts(secret):
        raise UnknownLink("This link is unknown.")
    try:
        receipt = callback.provider.parse_delivery_receipt(dict(request.query_params))
    except InvalidProviderPayload as exc:
        raise InvalidRequest(str(exc)) from None
    await apply_receipt(session, receipt, outbox=outbox, now=now)
    return Response(status_code=200)

"""HTTP API of the message templates (admins): the built-in defaults and variables, overrides
per site and per source, and a preview of what would go out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from qualify.deps import Admin, ComposerDep
from qualify.messages.state import TemplateKind
from qualify.models import MessageTemplate
from qualify.problems import LeadNotFound
from qualify.templates import service
from qualify.templates.defaults import DEFAULTS
from qualify.templates.preview import preview
from qualify.templates.problems import TemplateExists, TemplateNotFound
from qualify.templates.rendering import OPERATOR_ONLY, VARIABLES
from qualify.templates.schemas import (
    SITE_PATTERN,
    DefaultTemplateOut,
    PreviewIn,
    PreviewOut,
    TemplateCatalogue,
    TemplateContentIn,
    TemplateIn,
    TemplateOut,
)
from shared.api import AUTH_PROBLEMS, NowDep, SessionDep, problem_responses
from shared.errors import InvalidRequest
from shared.events.payloads import LeadSource, MessageChannel

router = APIRouter(prefix="/v1/message-templates", tags=["templates"], responses=AUTH_PROBLEMS)


def template_out(template: MessageTemplate) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        kind=template.kind,
        channel=template.channel,
        site=template.site,
        source=template.source,
        subject=template.subject,
        text=template.text,
        html=template.html,
        created_at=template.created_at,
        updated_at=template.updated_at,
        updated_by=template.updated_by,
    )


@router.get(
    "/catalogue",
    response_model=TemplateCatalogue,
    summary="The built-in French templates and every variable a template may use",
)
async def catalogue(_: Admin) -> TemplateCatalogue:
    return TemplateCatalogue(
        defaults=[
            DefaultTemplateOut(
                kind=kind,
                channel=channel,
                subject=content.subject,
                text=content.text,
                html=content.html,
            )
            for (kind, channel), content in DEFAULTS.items()
        ],
        variables=VARIABLES,
        operator_only=sorted(OPERATOR_ONLY),
    )


@router.get(
    "",
    response_model=list[TemplateOut],
    summary="The overrides (filters: kind, channel, site, source)",
    responses=problem_responses(InvalidRequest),
)
async def list_templates(
    session: SessionDep,
    _: Admin,
    kind: TemplateKind | None = None,
    channel: MessageChannel | None = None,
    site: Annotated[str | None, Query(pattern=SITE_PATTERN)] = None,
    source: LeadSource | None = None,
) -> list[TemplateOut]:
    rows = await service.listed(session, kind=kind, channel=channel, site=site, source=source)
    return [template_out(row) for row in rows]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateOut,
    summary="Override a template for every lead, a site, a source, or a site and a source",
    responses=problem_responses(
        TemplateExists, InvalidRequest, s422="Invalid body, unknown variable, stray brace"
    ),
)
async def create_template(
    body: TemplateIn, session: SessionDep, principal: Admin, now: NowDep
) -> TemplateOut:
    return template_out(await service.create(session, body, principal, now))


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="Render a template as it would go out, for a lead or a sample lead",
    responses=problem_responses(
        LeadNotFound, InvalidRequest, s422="Invalid body, unknown variable, missing text"
    ),
)
async def preview_template(
    body: PreviewIn, session: SessionDep, _: Admin, composer: ComposerDep, now: NowDep
) -> PreviewOut:
    return await preview(session, composer, body, now)


@router.get(
    "/{template_id}",
    response_model=TemplateOut,
    summary="One override",
    responses=problem_responses(TemplateNotFound),
)
async def get_template(template_id: str, session: SessionDep, _: Admin) -> TemplateOut:
    return template_out(await service.get(session, template_id))


@router.put(
    "/{template_id}",
    response_model=TemplateOut,
    summary="Replace an override's subject, text and HTML (its kind and scope stay)",
    responses=problem_responses(
        TemplateNotFound, InvalidRequest, s422="Invalid body, unknown variable, stray brace"
    ),
)
async def replace_template(
    template_id: str, body: TemplateContentIn, session: SessionDep, principal: Admin, now: NowDep
) -> TemplateOut:
    return template_out(await service.replace_content(session, template_id, body, principal, now))


@router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an override (the next most specific template applies again)",
    responses=problem_responses(TemplateNotFound),
)
async def delete_template(template_id: str, session: SessionDep, _: Admin) -> None:
    await service.delete(session, template_id)

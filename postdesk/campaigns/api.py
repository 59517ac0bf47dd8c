"""Mass email in the API: POST /api/v1/campaigns, GET /api/v1/campaigns/{id} (progress), pause and resume;
dispositions on records (disposition emails)."""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Schema, Status

from postdesk.accounts.access import require_supervisor
from postdesk.campaigns import services
from postdesk.campaigns.models import Campaign
from postdesk.core.errors import Invalid, NotFound
from postdesk.mailboxes.models import EmailAccount
from postdesk.projects.access import get_project_for

router = Router(tags=["campaigns"])


class RecipientIn(Schema):
    email: str
    fields: dict[str, str | int | float | None] = {}


class CampaignIn(Schema):
    account: str
    template: str
    project: str
    recipients: list[RecipientIn]
    track_opens: bool = True
    track_clicks: bool = True
    name: str = ""


class CampaignOut(Schema):
    id: int
    status: str
    total: int
    sent: int
    failed: int
    skipped: int


class DispositionIn(Schema):
    disposition: str


def _campaign_for(user, campaign_id: int) -> Campaign:
    require_supervisor(user)
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}", field="id")
    return campaign


@router.post("/campaigns", response={201: CampaignOut}, summary="Start a mass email campaign")
def create(request, payload: CampaignIn):
    require_supervisor(request.auth)
    project = get_project_for(request.auth, payload.project)
    account = EmailAccount.objects.filter(name=payload.account).first()
    if account is None:
        raise Invalid(f"no account named {payload.account!r}", field="account")
    template = project.templates.filter(name=payload.template).first()
    if template is None:
        raise Invalid(f"no template {payload.template!r} in project {project.key}", field="template")
    campaign = services.create_campaign(
        project=project, account=account, template=template,
        recipients=[r.dict() for r in payload.recipients], track_opens=payload.track_opens,
        track_clicks=payload.track_clicks, name=payload.name, by=request.auth)
    campaign.refresh_from_db()
    return Status(201, services.progress(campaign))


@router.get("/campaigns/{campaign_id}", response=CampaignOut, summary="A campaign's progress")
def read(request, campaign_id: int):
    return services.progress(_campaign_for(request.auth, campaign_id))


@router.post("/campaigns/{campaign_id}/pause", response=CampaignOut, summary="Pause a campaign")
def pause(request, campaign_id: int):
    return services.progress(services.pause(_campaign_for(request.auth, campaign_id), by=request.auth))


@router.post("/campaigns/{campaign_id}/resume", response=CampaignOut, summary="Resume a paused campaign")
def resume(request, campaign_id: int):
    return services.progress(services.resume(_campaign_for(request.auth, campaign_id), by=request.auth))


@router.post("/records/{record_id}/disposition", response={200: dict},
             summary="Set a record's disposition (sends the disposition's template, if it has one)")
def set_disposition(request, record_id: int, payload: DispositionIn):
    from postdesk.projects.access import projects_visible_to
    from postdesk.records.models import Record

    record = Record.objects.filter(pk=record_id, project__in=projects_visible_to(request.auth)).first()
    if record is None:
        raise NotFound(f"no record {record_id}", field="record")
    disposition = record.project.dispositions.filter(name=payload.disposition).first()
    if disposition is None:
        raise Invalid(f"no disposition {payload.disposition!r}", field="disposition")
    with transaction.atomic():
        email = services.set_disposition(record, disposition, by=request.auth)
    return {"record": record.pk, "disposition": disposition.name, "email": email.pk if email else None}

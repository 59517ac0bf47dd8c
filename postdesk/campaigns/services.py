"""Mass email (campaigns), disposition email, unsubscribes and the suppression list."""

from __future__ import annotations

from django.db import transaction

from postdesk.campaigns.models import Campaign, CampaignRecipient, Suppression
from postdesk.core import clock, jobs
from postdesk.core.errors import Conflict, Invalid
from postdesk.core.services import audit
from postdesk.emails.services import address_hash
from postdesk.mailboxes.models import Protocol
from postdesk.outbound.compose import HeaderInjectionError, validate_address

MAX_RECIPIENTS = 1_000_000


def create_campaign(*, project, account, template, recipients: list[dict], track_opens: bool = True,
                    track_clicks: bool = True, name: str = "", by=None) -> Campaign:
    """A campaign for a validated mass-email account: recipients are checked (bad addresses refused, naming the
    index), suppressed addresses are skipped, and sending is queued after the commit."""
    if account.protocol != Protocol.MASS:
        raise Invalid(f"{account.name} is not a mass-email account", field="account")
    if not account.enabled:
        raise Invalid(f"{account.name} is disabled", field="account")
    if account.verified_at is None:
        raise Conflict(f"the DNS records of {account.domain} are not verified yet: publish them and verify",
                       field="account")
    if template.project_id != project.pk:
        raise Invalid("the template belongs to another project", field="template")
    if not recipients:
        raise Invalid("a campaign needs at least one recipient", field="recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise Invalid(f"at most {MAX_RECIPIENTS} recipients per campaign", field="recipients")
    rows, seen = [], set()
    for i, recipient in enumerate(recipients):
        try:
            address = validate_address(f"recipients[{i}].email", str(recipient.get("email", "")).strip())
        except HeaderInjectionError as exc:
            raise Invalid(str(exc), field=f"recipients[{i}].email")
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        fields = recipient.get("fields") or {}
        if not isinstance(fields, dict):
            raise Invalid("fields must be an object of strings", field=f"recipients[{i}].fields")
        rows.append((address, {str(k): "" if v is None else str(v) for k, v in fields.items()}, recipient.get("record")))
    suppressed = suppressed_hashes(project, [a for a, _, _ in rows])
    with transaction.atomic():
        campaign = Campaign.objects.create(project=project, account=account, template=template, name=name[:200],
                                           track_opens=track_opens, track_clicks=track_clicks, total=len(rows),
                                           created_by=by)
        objs = []
        for address, fields, record in rows:
            skip = address_hash(address) in suppressed
            objs.append(CampaignRecipient(campaign=campaign, address=address, fields=fields, record_id=record,
                                          state=CampaignRecipient.State.SKIPPED if skip else
                                          CampaignRecipient.State.PENDING))
        CampaignRecipient.objects.bulk_create(objs, batch_size=2000)
        skipped = sum(1 for o in objs if o.state == CampaignRecipient.State.SKIPPED)
        Campaign.objects.filter(pk=campaign.pk).update(skipped=skipped)
        campaign.skipped = skipped
        audit("campaign.create", actor=by, project=project, obj=campaign,
              after={"account": account.name, "template": template.name, "recipients": len(rows)})
        start_senders(campaign)
    return campaign


def sending_jobs(cpus: int, workers: int) -> int:
    """How many jobs send one campaign: two per core (while one process waits for the database or the relay the
    other computes: one per core left ~15 % of the CPU idle), at most four, and always leaving two job workers
    free for everything else (inbound processing must not wait for a campaign)."""
    return max(1, min(4, 2 * cpus, workers - 2))


def start_senders(campaign: Campaign) -> None:
    """Queue the campaign's sending jobs, each claiming its own chunks of recipients."""
    import os

    from django.conf import settings

    from postdesk.campaigns.tasks import run_campaign

    for _ in range(sending_jobs(os.cpu_count() or 1, settings.JOBS_WORKERS)):
        jobs.on_commit(run_campaign, campaign.pk)


def suppressed_hashes(project, addresses: list[str]) -> set[str]:
    hashes = [address_hash(a) for a in addresses]
    found = set()
    for start in range(0, len(hashes), 900):
        chunk = hashes[start : start + 900]
        found.update(Suppression.objects.filter(address_hash__in=chunk).filter(
            project__isnull=True) .values_list("address_hash", flat=True))
        found.update(Suppression.objects.filter(address_hash__in=chunk, project=project)
                     .values_list("address_hash", flat=True))
    return found


def pause(campaign: Campaign, by=None) -> Campaign:
    if campaign.status not in (Campaign.Status.QUEUED, Campaign.Status.SENDING):
        raise Conflict(f"a {campaign.status} campaign cannot be paused", field="status")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.status = Campaign.Status.PAUSED
    audit("campaign.pause", actor=by, project=campaign.project, obj=campaign)
    return campaign


def resume(campaign: Campaign, by=None) -> Campaign:
    if campaign.status != Campaign.Status.PAUSED:
        raise Conflict(f"a {campaign.status} campaign cannot be resumed", field="status")
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.QUEUED)
        campaign.status = Campaign.Status.QUEUED
        audit("campaign.resume", actor=by, project=campaign.project, obj=campaign)
        start_senders(campaign)
    return campaign


def progress(campaign: Campaign) -> dict:
    return {"id": campaign.pk, "status": campaign.status, "total": campaign.total, "sent": campaign.sent,
            "failed": campaign.failed, "skipped": campaign.skipped}


def unsubscribe(email, *, source: str = "link") -> bool:
    """The recipient of this email unsubscribes: a suppression entry (hash only) and one Unsubscribed event."""
    from postdesk.emails.models import EventKind
    from postdesk.emails.services import add_event

    created = False
    for address in list(email.to or [])[:1]:
        _, created = Suppression.objects.get_or_create(project=email.project, address_hash=address_hash(address),
                                                       defaults={"reason": Suppression.Reason.UNSUBSCRIBED})
    add_event(email, EventKind.UNSUBSCRIBED, {"source": source})
    return created


def set_disposition(record, disposition, *, by=None):
    """Set a record's disposition; a disposition with a template sends it to the record (a disposition email)."""
    from postdesk.emails.models import Kind
    from postdesk.mailboxes.services import default_sender_for
    from postdesk.outbound.services import queue_email, render

    if disposition.project_id != record.project_id:
        raise Invalid("the disposition belongs to another project", field="disposition")
    record.disposition, record.disposition_at = disposition, clock.now()
    record.save(update_fields=["disposition", "disposition_at"])
    audit("record.disposition", actor=by, project=record.project, obj=record, after={"disposition": disposition.name})
    if disposition.template_id is None:
        return None
    if not record.email:
        raise Invalid("the record has no email address for the disposition email", field="record.email")
    account = disposition.sender_account or default_sender_for(record.project)
    fields = {"name": record.name, "email": record.email, "phone": record.phone, **(record.data or {}),
              "agent": getattr(by, "display_name", ""), "disposition": disposition.name}
    template = disposition.template
    return queue_email(project=record.project, account=account, kind=Kind.DISPOSITION, to=[record.email],
                       cc=list(template.cc), bcc=list(template.bcc), subject=render(template.subject, fields),
                       text=render(template.body, fields), html=render(template.body_html, fields) or None,
                       sent_by=by, template=template, record=record, disposition=disposition)

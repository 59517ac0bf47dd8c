"""Campaign jobs: run (or continue) a campaign; resume sending campaigns after a restart."""

from postdesk.campaigns import sender
from postdesk.core.jobs import crontab, job, periodic_job


@job()
def run_campaign(campaign_id: int) -> dict:
    return sender.run(campaign_id)


@periodic_job(crontab(minute="*/5"))
def continue_campaigns() -> None:
    """Campaigns still 'sending' whose job is gone (crash, restart) continue; run() is safe to call twice."""
    from postdesk.campaigns.models import Campaign

    for campaign_id in Campaign.objects.filter(status__in=["sending", "queued"]).values_list("id", flat=True):
        run_campaign(campaign_id)


def recover() -> None:
    continue_campaigns.call_local()

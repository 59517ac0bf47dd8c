"""Every email postdesk has received or sent, with its raw bytes, content, attachments, thread and delivery events."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from postdesk.core import clock


class Direction(models.TextChoices):
    IN = "in", "Inbound"
    OUT = "out", "Outbound"


class Kind(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    AGENT_REPLY = "agent_reply", "Agent email"
    AUTO_RESPONSE = "auto_response", "Automatic response"
    DISPOSITION = "disposition", "Disposition email"
    MASS = "mass", "Mass email"
    DELIVERY_REPORT = "delivery_report", "Delivery report"


class Status(models.TextChoices):
    # inbound
    NEW = "new", "New"  # in the agents' lists until assigned to a ticket or closed
    CLOSED = "closed", "Closed"  # handled without a ticket
    UNPARSEABLE = "unparseable", "Unparseable"  # kept raw, flagged, shown to supervisors
    REPORT = "report", "Delivery report"  # bounce, complaint or auto-reply: never in agents' lists
    # outbound
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"  # accepted by the relay (event Delivered)
    DROPPED = "dropped", "Dropped"  # refused permanently or retries exhausted
    FAILED = "failed", "Failed"  # could not be sent from our side (account error, bad credentials)


class EventKind(models.TextChoices):
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    DROPPED = "dropped", "Dropped"
    BOUNCED = "bounced", "Bounced"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Link clicked"
    SPAM = "spam", "Marked as spam"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    AUTOREPLY = "autoreply", "Auto-reply"


# One bit per event kind on Email.event_flags: statistics count each kind once per email.
EVENT_BITS = {kind: 1 << i for i, kind in enumerate(EventKind.values)}


class RawMessage(models.Model):
    """The message exactly as received or sent (message/rfc822 bytes)."""

    data = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)


class Thread(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="threads")
    subject = models.CharField(max_length=1000, blank=True)  # base subject of the first message
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="threads"
    )
    created_at = models.DateTimeField(default=clock.now)
    last_message_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class MessageIdIndex(models.Model):
    """Message-IDs seen in a project (own, and referenced by others) -> thread; threading merges threads through it."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=998)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="message_ids")
    email = models.ForeignKey(
        "emails.Email", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "message_id"], name="message_id_index_unique")
        ]


class Email(models.Model):
    """One email, inbound or outbound. Wide content lives in EmailContent so that lists read narrow rows."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="emails")
    account = models.ForeignKey(
        "mailboxes.EmailAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    date = models.DateTimeField(default=clock.now)  # received (inbound) or created/sent (outbound)
    created_at = models.DateTimeField(default=clock.now)

    mail_from = models.CharField(max_length=998, blank=True)  # envelope sender (return path)
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=500, blank=True)
    to = models.JSONField(default=list, blank=True)  # header addresses
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.CharField(max_length=998, blank=True)
    subject = models.CharField(max_length=1000, blank=True)
    first_line = models.CharField(max_length=300, blank=True)
    size = models.PositiveIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)

    language = models.CharField(max_length=8, blank=True)
    queue = models.ForeignKey(
        "projects.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    locked_at = models.DateTimeField(null=True, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_to_email = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    record = models.ForeignKey(
        "records.Record", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    template = models.ForeignKey(
        "projects.Template", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disposition = models.ForeignKey(
        "projects.Disposition", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )

    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    raw = models.ForeignKey(RawMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    report = models.JSONField(null=True, blank=True)  # delivery reports: {type, recipients: [...]}
    parse_error = models.TextField(blank=True)
    has_remote_images = models.BooleanField(default=False)
    show_images = models.BooleanField(default=False)  # the per-email 'show images' choice
    is_spam = models.BooleanField(default=False)

    # outbound delivery
    return_path = models.CharField(max_length=320, blank=True)  # VERP address used as MAIL FROM
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    smtp_response = models.TextField(blank=True)  # the server's last answer (errors shown to supervisors)
    event_flags = models.PositiveIntegerField(default=0)  # EVENT_BITS of events already counted

    class Meta:
        indexes = [
            models.Index(fields=["project", "-date", "-id"], name="email_project_date"),
            models.Index(fields=["project", "direction", "-date", "-id"], name="email_project_dir_date"),
            models.Index(  # the email log's default view: emails not (yet) on a ticket
                fields=["project", "-date", "-id"], condition=Q(ticket__isnull=True), name="email_log_unticketed"
            ),
            # the agents' lists: new emails of a queue, oldest first (a plain composite index: SQLite cannot use a
            # partial index when the status comes as a bound parameter, as the ORM sends it)
            models.Index(fields=["queue", "status", "ticket", "date", "id"], name="email_new_by_queue"),
            # ... and the same list for PostgreSQL, whose planner misjudges the composite index (it estimated ~6,000
            # rows for 600 and read the whole unticketed set: 100 ms at 300k emails, 0.7 ms with this one)
            models.Index(
                fields=["queue", "date", "id"],
                condition=Q(status="new", ticket__isnull=True),
                name="email_inbox",
            ),
            models.Index(fields=["ticket", "date"], name="email_ticket_date"),
            models.Index(fields=["thread", "date"], name="email_thread_date"),
            models.Index(fields=["message_id"], name="email_message_id"),
            models.Index(
                fields=["status", "next_attempt_at"], condition=Q(direction="out"), name="email_outbox"
            ),
            models.Index(fields=["return_path"], condition=~Q(return_path=""), name="email_return_path"),
            # the emails of a sender (the email log's sender filter through KnownSender; its delete trigger)
            models.Index(fields=["from_address", "from_name", "date"], name="email_sender"),
        ]

    def __str__(self):
        return f"{self.direction} {self.id} {self.subject[:40]}"


class KnownSender(models.Model):
    """Each distinct (address, display name) among the emails' senders. Database triggers on emails_email keep it
    (migration 0008: every way an email is written or deleted, bulk SQL included). The email log's sender substring
    filter searches these rows (tens of thousands, not millions), then reads the emails of the matching addresses."""

    address = models.CharField(max_length=320)
    name = models.CharField(max_length=500)
    search = models.TextField()  # lower(name || ' ' || address), written by the triggers: what substrings match

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "name"], name="known_sender_unique")]


class EmailContent(models.Model):
    email = models.OneToOneField(Email, primary_key=True, on_delete=models.CASCADE, related_name="content")
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)  # sanitised; remote images neutralised until shown


class Attachment(models.Model):
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)  # safe display name
    original_filename = models.CharField(max_length=1000, blank=True)  # as sent, escaped when shown
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveIntegerField(default=0)
    content_id = models.CharField(max_length=998, blank=True)
    inline = models.BooleanField(default=False)
    data = models.BinaryField()


class DeliveryEvent(models.Model):
    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField(default=clock.now)
    detail = models.JSONField(
        default=dict, blank=True
    )  # smtp response, report recipient, link index, user agent

    class Meta:
        indexes = [models.Index(fields=["email", "at"]), models.Index(fields=["kind", "at"])]
        ordering = ["at", "id"]

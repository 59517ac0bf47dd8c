from django.conf import settings
from django.db import models
from django.db.models import Q

from postdesk.core import clock


class Project(models.Model):
    """A project (campaign) with its email settings: tutorial section 3, 'Email handling'."""

    key = models.CharField(max_length=20, unique=True)  # the xxx of ticket numbers xxx-YYYYMMDD-zzzzzz
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=clock.now)

    # Email handling (defaults as in a new project of the tutorial's product)
    list_size = models.PositiveSmallIntegerField(default=50)  # New email list element number, 1..250
    lock_emails = models.BooleanField(default=True)
    change_pref_user = models.BooleanField(default=True)
    auto_response_template = models.ForeignKey(
        "projects.Template", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agents_create_records = models.BooleanField(default=False)
    search = models.BooleanField(default=True)
    shared_tickets = models.BooleanField(default=False)
    display_address = models.BooleanField(default=True)
    display_template_cc = models.BooleanField(default=True)
    display_template_bcc = models.BooleanField(default=False)
    language_detection = models.BooleanField(default=False)
    email_queue = models.BooleanField(default=False)  # needs language_detection
    auto_delete_days = models.PositiveIntegerField(null=True, blank=True)  # None, or >= 30

    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMember", related_name="projects"
    )
    sender_accounts = models.ManyToManyField(
        "mailboxes.EmailAccount", through="SenderAccount", related_name="+"
    )

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} {self.name}"

    @property
    def default_queue(self) -> "Queue":
        return self.queues.get(is_default=True)


class ProjectMember(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="project_member_unique")]


class SenderAccount(models.Model):
    """An SMTP account shown to the project's agents as a sender (General settings > Email sender accounts)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sender_links")
    account = models.ForeignKey(
        "mailboxes.EmailAccount", on_delete=models.CASCADE, related_name="project_links"
    )
    is_default = models.BooleanField(default=False)  # this project's default sender (else the account's Default)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "account"], name="sender_account_unique")]


class Queue(models.Model):
    """An email queue. Each project has exactly one default queue (renamable, never deletable) and language queues."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=100)
    language = models.CharField(max_length=8, blank=True)  # ISO 639-1; blank for the default queue
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="queue_name_unique"),
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_default=True), name="queue_one_default"
            ),
            models.UniqueConstraint(
                fields=["project", "language"], condition=Q(is_default=False), name="queue_language_unique"
            ),
        ]

    def __str__(self):
        return self.name


class AgentQueueSkill(models.Model):
    """Agents x Queues & Skills: a skill level means membership of the queue."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_skills")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="skills")
    level = models.PositiveSmallIntegerField(default=1)  # 1..10

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "queue"], name="agent_queue_unique")]


class Template(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=500, blank=True)
    body = models.TextField(blank=True)  # plain text with {{ field }} placeholders
    body_html = models.TextField(blank=True)  # optional HTML version (mass email)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    visible_to_agents = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="template_name_unique")]

    def __str__(self):
        return self.name


class TicketType(models.Model):
    """Project > Tickets > Custom values: a Label and an Export value."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ticket_types")
    label = models.CharField(max_length=100)
    export_value = models.CharField(max_length=100)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["project", "label"], name="ticket_type_label_unique"),
            models.UniqueConstraint(fields=["project", "export_value"], name="ticket_type_export_unique"),
        ]

    def __str__(self):
        return self.label


class Disposition(models.Model):
    """A call/record outcome; setting it on a record can send a template (disposition email)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dispositions")
    name = models.CharField(max_length=100)
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sender_account = models.ForeignKey(
        "mailboxes.EmailAccount", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="disposition_name_unique")]

    def __str__(self):
        return self.name

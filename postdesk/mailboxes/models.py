from django.db import models

from postdesk.core import clock
from postdesk.core.crypto import EncryptedTextField


class Protocol(models.TextChoices):
    FORWARDING = "forwarding", "Email forwarding"
    SMTP = "smtp", "SMTP server"
    MASS = "mass", "Mass email"


class Security(models.TextChoices):
    STARTTLS = "starttls", "STARTTLS"
    TLS = "tls", "TLS"
    NONE = "none", "None"


class Auth(models.TextChoices):
    LOGIN = "login", "LOGIN"
    PLAIN = "plain", "PLAIN"
    XOAUTH2 = "xoauth2", "XOAUTH2 (OAuth 2.0)"
    NONE = "none", "None"


class EmailAccount(models.Model):
    """Global settings > Email accounts: forwarding (inbound), SMTP (sender) and mass-email accounts."""

    name = models.CharField(max_length=100, unique=True)
    protocol = models.CharField(max_length=16, choices=Protocol.choices)
    address = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)

    # forwarding: mail to `address` is routed to this project
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.PROTECT, related_name="inbound_accounts"
    )

    # smtp
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.STARTTLS)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.LOGIN)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    tls_verify = models.BooleanField(default=True)
    ca_file = models.CharField(max_length=500, blank=True)
    max_per_second = models.PositiveIntegerField(null=True, blank=True)  # throttle; None = unlimited

    # OAuth 2.0 (auth = xoauth2)
    oauth_provider = models.CharField(max_length=20, blank=True)  # microsoft | google | custom
    oauth_client_id = models.CharField(max_length=255, blank=True)
    oauth_client_secret = EncryptedTextField(blank=True)
    oauth_authorize_url = models.URLField(max_length=500, blank=True)
    oauth_token_url = models.URLField(max_length=500, blank=True)
    oauth_scope = models.CharField(max_length=500, blank=True)
    oauth_access_token = EncryptedTextField(blank=True)
    oauth_refresh_token = EncryptedTextField(blank=True)
    oauth_expires_at = models.DateTimeField(null=True, blank=True)

    # mass: sending domain, DKIM key and DNS verification
    domain = models.CharField(max_length=253, blank=True)
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_private_key = EncryptedTextField(blank=True)
    dkim_public_key = models.TextField(blank=True)  # the p= value
    verified_at = models.DateTimeField(null=True, blank=True)
    dns_status = models.JSONField(default=dict, blank=True)

    # health: the last error seen with this account (auth failure, refresh failure), shown to supervisors
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["protocol", "address"])]

    def __str__(self):
        return self.name

from django.conf import settings
from django.db import models

from postdesk.core import clock


class RecordField(models.Model):
    """An attribute of a project's records; `personal_data` ones are anonymised by retention."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="record_fields")
    name = models.CharField(max_length=64)
    label = models.CharField(max_length=200, blank=True)
    personal_data = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="record_field_unique")]


class Record(models.Model):
    """A customer (the vendor's entity/contact). name, email and phone are always personal data."""

    PERSONAL_COLUMNS = ("name", "email", "phone")

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="records")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=50, blank=True)
    data = models.JSONField(default=dict, blank=True)  # values of RecordField attributes
    disposition = models.ForeignKey(
        "projects.Disposition", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disposition_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    anonymised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "email"])]

    def __str__(self):
        return self.name or self.email or f"record {self.pk}"

"""The only place that changes customer records."""

from __future__ import annotations

from postdesk.core import clock
from postdesk.core.errors import Forbidden, Invalid
from postdesk.core.services import audit
from postdesk.records.models import Record


def find_by_email(project, address: str) -> Record | None:
    if not address:
        return None
    return Record.objects.filter(project=project, email__iexact=address, anonymised_at__isnull=True).first()


def create_record(
    project, *, name: str = "", email: str = "", phone: str = "", data: dict | None = None, by=None
) -> Record:
    """A new customer record. Agents may create records only with the project's 'Enable agents to create new
    records' setting on."""
    if by is not None and not by.is_supervisor and not project.agents_create_records:
        raise Forbidden("agents of this project may not create records", field="record")
    if not (name or email or phone):
        raise Invalid("a record needs a name, an email address or a phone number", field="record")
    record = Record.objects.create(
        project=project,
        name=name[:200],
        email=email[:254],
        phone=phone[:50],
        data=data or {},
        created_by=by,
        created_at=clock.now(),
    )
    audit("record.create", actor=by, project=project, obj=record, after={"email": email, "name": name})
    return record

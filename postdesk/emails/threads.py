"""Threads in the database, mirroring inbound.threading.ThreadGrouper: every Message-ID seen in a project (a message's
own id and the ids it references) maps to a thread; a message joins the thread of any id it shares, and when it links
two threads (a late parent, out-of-order arrival) they are merged into the older one. Any arrival order gives the same
grouping."""

from __future__ import annotations

from postdesk.core import clock
from postdesk.core.sqlbulk import insert, update_where
from postdesk.emails.models import Email, MessageIdIndex, Thread

MAX_KEY_LENGTH = 998


def thread_for(project, keys: list[str], subject: str = "", moment=None) -> tuple[Thread, bool]:
    """The thread a message with these ids belongs to, merging threads it links; (thread, created)."""
    keys = [k[:MAX_KEY_LENGTH] for k in keys if k]
    moment = moment or clock.now()
    found = list(
        MessageIdIndex.objects.filter(project=project, message_id__in=keys)
        .values_list("thread_id", flat=True)
        .distinct()
    )
    if not found:
        return Thread.objects.create(
            project=project, subject=subject[:1000], created_at=moment, last_message_at=moment
        ), True
    threads = sorted(Thread.objects.filter(pk__in=found), key=lambda t: (t.created_at, t.pk))
    keep = threads[0]
    for other in threads[1:]:
        merge(other, into=keep)
    return keep, False


def merge(other: Thread, *, into: Thread) -> None:
    MessageIdIndex.objects.filter(thread=other).update(thread=into)
    Email.objects.filter(thread=other).update(thread=into)
    if into.ticket_id is None and other.ticket_id is not None:
        into.ticket_id = other.ticket_id
        into.save(update_fields=["ticket"])
    Thread.objects.filter(pk=other.pk).update(merged_into=into)


def remember(project, thread: Thread, keys: list[str], email: Email | None) -> None:
    """Index the message's ids (own id first) under the thread: ids already known keep their thread; the own id,
    known only as a reference until now, becomes this email's. Plain SQL (two statements): every reply runs this."""
    keys = list(dict.fromkeys(k[:MAX_KEY_LENGTH] for k in keys if k))
    if not keys:
        return
    own_email = email.pk if email is not None else None
    insert(MessageIdIndex, ["project_id", "message_id", "thread_id", "email_id"],
           [(project.pk, k, thread.pk, own_email if i == 0 else None) for i, k in enumerate(keys)],
           returning=False, ignore_conflicts=True)
    if own_email is not None:
        update_where(MessageIdIndex, "email_id = %s", [own_email],
                     "project_id = %s AND message_id = %s AND email_id IS NULL", [project.pk, keys[0]])


def touch(thread: Thread, moment) -> None:
    if thread.last_message_at is None or moment > thread.last_message_at:
        Thread.objects.filter(pk=thread.pk).update(last_message_at=moment)

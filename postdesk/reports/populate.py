"""`postdesk bench populate --emails N`: a realistic synthetic history for benchmarks: a project with language queues,
agents, customers, threads of inbound and outbound mail in several languages over the last year, tickets with their
counters, delivery events, mass email, statistics and agent states. Inserted in bulk (plain SQL), so a million emails
take minutes, not hours. Deterministic for a given seed."""

from __future__ import annotations

import datetime as dt
import json
import random
import time

from django.db import connection, transaction

from postdesk.accounts.models import AgentStateChange, User
from postdesk.core import clock
from postdesk.core.sqlbulk import db_datetime, db_json, insert
from postdesk.emails import search
from postdesk.emails.models import (
    EVENT_BITS,
    DeliveryEvent,
    Email,
    EmailContent,
    EventKind,
    MessageIdIndex,
    Thread,
)
from postdesk.projects import services as project_services
from postdesk.projects.models import Project
from postdesk.records.models import Record
from postdesk.tickets.models import Ticket

LANGUAGES = {
    "en": (0.5, ["Where is my order", "Refund request", "Invoice question", "Delivery problem", "Change my address",
                 "Broken item received", "Cancel subscription", "Password reset does not work"],
           "Hello, I ordered an item some days ago and I still have not received it. Could you please check the "
           "status of my order and let me know when it will arrive? Thank you very much for your help."),
    "hu": (0.2, ["Hol van a rendelésem", "Visszatérítés", "Számla kérdés", "Szállítási probléma", "Címváltozás"],
           "Jó napot kívánok! Néhány napja rendeltem egy terméket, de még mindig nem érkezett meg. Kérem, nézzék "
           "meg a rendelésem állapotát, és írják meg, mikor érkezik. Köszönöm szépen a segítségüket."),
    "de": (0.15, ["Wo ist meine Bestellung", "Rückerstattung", "Frage zur Rechnung", "Lieferproblem"],
           "Guten Tag, ich habe vor einigen Tagen etwas bestellt und es ist immer noch nicht angekommen. Könnten "
           "Sie bitte den Status meiner Bestellung prüfen? Vielen Dank für Ihre Hilfe."),
    "fr": (0.1, ["Où est ma commande", "Demande de remboursement", "Question sur la facture"],
           "Bonjour, j'ai commandé un article il y a quelques jours et je ne l'ai toujours pas reçu. Pourriez-vous "
           "vérifier l'état de ma commande ? Merci beaucoup pour votre aide."),
    "es": (0.05, ["Dónde está mi pedido", "Solicitud de reembolso"],
           "Hola, pedí un artículo hace unos días y todavía no lo he recibido. ¿Podrían comprobar el estado de mi "
           "pedido? Muchas gracias por su ayuda."),
}
FIRST = ["Anna", "Bence", "Carla", "Dávid", "Eva", "Felix", "Greta", "Hugo", "Ilona", "János", "Klara", "Lukas",
         "Marie", "Nóra", "Oskar", "Petra", "Quentin", "Réka", "Stefan", "Tamás", "Ute", "Viktor", "Zsófia"]
LAST = ["Kovács", "Müller", "Smith", "Nagy", "Schmidt", "Dubois", "García", "Tóth", "Weber", "Martin", "Horváth"]
DOMAINS = ["example.com", "mail.example.net", "post.example.org", "inbox.example.hu", "web.example.de"]
AGENTS = 20
CHUNK = 5000


def _pick_language(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for code, (weight, _, _) in LANGUAGES.items():
        total += weight
        if roll < total:
            return code
    return "en"


def ensure_project(key: str) -> Project:
    project = Project.objects.filter(key=key).first()
    if project is None:
        project = project_services.create_project(key=key, name=f"Benchmark {key}")
        project_services.update_settings(project, {"language_detection": True, "email_queue": True,
                                                   "list_size": 250, "shared_tickets": True})
        for code, name in (("en", "English"), ("hu", "Magyar"), ("de", "Deutsch")):
            project_services.create_queue(project, name=name, language=code)
        for label, value in (("Complaint", "COMPLAINT"), ("Financial question", "FINANCE"),
                             ("Technical question", "TECH")):
            project_services.upsert_ticket_type(project, label, value)
    return project


def ensure_agents(project: Project) -> list[User]:
    from django.contrib.auth.hashers import make_password

    agents = []
    queues = list(project.queues.all())
    password = make_password("bench-agent")  # hashed once: every benchmark agent logs in with "bench-agent"
    for i in range(1, AGENTS + 1):
        user, _ = User.objects.get_or_create(username=f"agent{i:02d}", defaults={
            "role": "agent", "first_name": f"Agent {i:02d}", "password": password})
        for j, queue in enumerate(queues):
            if (i + j) % 2 == 0 or queue.is_default:
                project_services.set_skill(project, user, queue, 1 + (i + j) % 5)
        agents.append(user)
    return agents


def populate(emails: int, project_key: str = "101", seed: int = 1, out=print) -> dict:
    rng = random.Random(seed)
    started = time.monotonic()
    project = ensure_project(project_key)
    agents = ensure_agents(project)
    queues = {q.language: q for q in project.queues.filter(is_default=False)}
    default_queue = project.queues.get(is_default=True)
    types = list(project.ticket_types.values_list("id", flat=True))
    now = clock.now()
    customers = max(100, emails // 20)
    with transaction.atomic():
        record_ids = insert(Record, ["project_id", "name", "email", "phone", "data", "created_at"], [
            (project.pk, f"{rng.choice(FIRST)} {rng.choice(LAST)}", f"customer{i}@{DOMAINS[i % len(DOMAINS)]}", "",
             "{}", db_datetime(now - dt.timedelta(days=400))) for i in range(customers)])
    made = 0
    tickets_made = 0
    prefix = f"{seed}-{int(time.time())}"
    while made < emails:
        batch = min(CHUNK, emails - made)
        with transaction.atomic():
            m, t = _chunk(rng, project, agents, queues, default_queue, types, record_ids, batch, now, prefix, made,
                          emails)
        made += m
        tickets_made += t
        out(f"  {made:,} emails, {tickets_made:,} tickets ({time.monotonic() - started:.0f} s)")
    with transaction.atomic():
        _rollups(project)
        _agent_states(rng, agents, project, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"emails": made, "tickets": tickets_made, "seconds": round(time.monotonic() - started, 1)}


def _chunk(rng, project, agents, queues, default_queue, types, record_ids, size, now, prefix, offset, total):
    """One transaction's worth: threads of 1-5 messages until `size` emails. Threads start in time order over the
    last year (as mail arrives), so ids grow with dates as they do in a real installation."""
    plan = []  # (thread_no, email fields...)
    threads_rows, tickets = [], []
    n = 0
    thread_no = 0
    while n < size:
        length = min(size - n, rng.choice((1, 1, 2, 2, 3, 3, 4, 5)))
        lang = _pick_language(rng)
        _, subjects, body = LANGUAGES[lang]
        subject = rng.choice(subjects) + f" #{rng.randint(1000, 99999)}"
        position = (offset + n) / max(total, 1)
        start = now - dt.timedelta(seconds=int(365 * 86400 * (1 - position)) + rng.randint(0, 3600))
        customer = rng.randrange(len(record_ids))
        address = f"customer{customer}@{DOMAINS[customer % len(DOMAINS)]}"
        agent = rng.choice(agents)
        fresh = start > now - dt.timedelta(days=3) and rng.random() < 0.5  # recent and still unanswered
        ticketed = not fresh and rng.random() < 0.6
        threads_rows.append((project.pk, subject, db_datetime(start), db_datetime(start)))
        if ticketed:
            tickets.append((thread_no, agent, customer, subject, start, lang))
        moment = start
        for i in range(length):
            inbound = i % 2 == 0 or (fresh and i == 0)
            if fresh and i > 0:
                inbound = True
            plan.append((thread_no, inbound, moment, lang, subject if i == 0 else f"Re: {subject}", address, agent,
                         body, customer, ticketed, fresh, i))
            moment = min(now, moment + dt.timedelta(minutes=rng.randint(5, 3 * 24 * 60)))
            n += 1
        thread_no += 1
    thread_ids = insert(Thread, ["project_id", "subject", "created_at", "last_message_at"], threads_rows)
    ticket_by_thread = {}
    if tickets:
        day_counter: dict[str, int] = {}
        rows = []
        for _, agent, customer, subject, start, _ in tickets:
            day = f"{start:%Y%m%d}"
            day_counter[day] = day_counter.get(day, 0) + 1
            number = f"{project.key}-{day}-9{offset // 1000:05d}{day_counter[day]:04d}"[:40]
            rows.append((project.pk, number, rng.choice(types) if types else None, subject[:500], "", agent.pk,
                         agent.pk, record_ids[customer], "closed" if rng.random() < 0.7 else "park",
                         "successful", db_datetime(start), db_datetime(start), db_datetime(start), 0, 0, False))
        ids = insert(Ticket, ["project_id", "number", "type_id", "title", "description", "owner_id", "creator_id",
                              "record_id", "status", "substatus", "created_at", "last_open_time", "updated_at",
                              "sent_count", "received_count", "unread"], rows)
        for (thread_index, *_), ticket_id in zip(tickets, ids, strict=True):
            ticket_by_thread[thread_index] = ticket_id
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {Thread._meta.db_table} SET ticket_id = %s WHERE id = %s",
                               [(ticket_by_thread[t[0]], thread_ids[t[0]]) for t in tickets])
    columns = ["project_id", "direction", "kind", "status", "date", "created_at", "mail_from", "from_address",
               "from_name", "to", "cc", "bcc", "reply_to", "subject", "first_line", "size", "has_attachments",
               "language", "queue_id", "ticket_id", "thread_id", "sent_by_id", "message_id", "in_reply_to",
               "references", "parse_error", "has_remote_images", "show_images", "is_spam", "return_path", "attempts",
               "smtp_response", "event_flags", "record_id", "sent_at"]
    rows, texts, keys = [], [], []
    support = "support@acme.test"
    for thread_index, inbound, moment, lang, subject, address, agent, body, _, _, fresh, _ in plan:
        mid = f"<{prefix}-{offset + len(rows)}@{'example.com' if inbound else 'acme.test'}>"
        text = body if inbound else f"Dear customer,\n\nthank you for your message. {body[:120]}\n\nBest regards"
        ticket_id = ticket_by_thread.get(thread_index)
        queue = queues.get(lang, default_queue)
        flags = 0
        if not inbound:
            flags = EVENT_BITS[EventKind.DELIVERED] | (EVENT_BITS[EventKind.OPENED] if rng.random() < 0.3 else 0)
        status = ("new" if fresh else ("closed" if not ticket_id else "new")) if inbound else "sent"
        rows.append((
            project.pk, "in" if inbound else "out", "inbound" if inbound else "agent_reply", status,
            db_datetime(moment), db_datetime(moment), address if inbound else "", address if inbound else support,
            "Customer" if inbound else "Acme Support", db_json([support] if inbound else [address]), "[]", "[]", "",
            subject[:1000], text[:200], 2000 + len(text), False, lang if inbound else "",
            queue.pk if inbound else None, ticket_id, thread_ids[thread_index], None if inbound else agent.pk, mid,
            "", "", "", False, False, False, "", 0 if inbound else 1, "" if inbound else "250 OK", flags,
            None, None if inbound else db_datetime(moment),
        ))
        texts.append(text)
        keys.append(mid)
    email_ids = insert(Email, columns, rows)
    insert(EmailContent, ["email_id", "text", "html"], [(pk, text, "") for pk, text in zip(email_ids, texts,
                                                                                            strict=True)], False)
    insert(MessageIdIndex, ["project_id", "message_id", "thread_id", "email_id"],
           [(project.pk, key, row[20], pk) for key, row, pk in zip(keys, rows, email_ids, strict=True)], False)
    events = []
    for pk, row in zip(email_ids, rows, strict=True):
        if row[1] == "out":
            events.append((pk, EventKind.DELIVERED, row[4], "{}"))
            if row[32] & EVENT_BITS[EventKind.OPENED]:
                events.append((pk, EventKind.OPENED, row[4], "{}"))
    insert(DeliveryEvent, ["email_id", "kind", "at", "detail"], events, False)
    search.index([(pk, project.pk, row[13], text, f"{row[8]} {row[7]}")
                  for pk, row, text in zip(email_ids, rows, texts, strict=True)])
    search.index_addresses([(pk, row[8], row[7], json.loads(row[9]), []) for pk, row in zip(email_ids, rows, strict=True)])
    return len(rows), len(tickets)


def _rollups(project: Project) -> None:
    """Ticket counters and daily statistics from what was inserted (services keep them up to date in real life)."""
    t, e = Ticket._meta.db_table, Email._meta.db_table
    with connection.cursor() as cursor:
        for column, direction, func in (("first_received_time", "in", "MIN"), ("last_received_time", "in", "MAX"),
                                        ("first_sent_time", "out", "MIN"), ("last_sent_time", "out", "MAX")):
            cursor.execute(f"UPDATE {t} SET {column} = (SELECT {func}(date) FROM {e} WHERE {e}.ticket_id = {t}.id "
                           f"AND {e}.direction = %s) WHERE project_id = %s", [direction, project.pk])
        for column, direction in (("received_count", "in"), ("sent_count", "out")):
            cursor.execute(f"UPDATE {t} SET {column} = (SELECT COUNT(*) FROM {e} WHERE {e}.ticket_id = {t}.id "
                           f"AND {e}.direction = %s) WHERE project_id = %s", [direction, project.pk])
        rows = Ticket.objects.filter(project=project, first_received_time__isnull=False,
                                     first_sent_time__isnull=False).values_list("id", "first_received_time",
                                                                                 "first_sent_time")
        cursor.executemany(f"UPDATE {t} SET sla_seconds = %s WHERE id = %s",
                           [(max(0, int((s - r).total_seconds())), pk) for pk, r, s in rows])
    # daily statistics of agent email, recomputed for the project in one aggregate query
    from django.db.models import Count, F, Sum
    from django.db.models.functions import TruncDate

    from postdesk.reports.models import DailyEmailStats

    DailyEmailStats.objects.filter(project=project, kind="agent").delete()
    rows = (
        Email.objects.filter(project=project, direction="out", kind="agent_reply", sent_by__isnull=False)
        .annotate(day=TruncDate("date"), delivered_bit=F("event_flags").bitand(EVENT_BITS[EventKind.DELIVERED]),
                  opened_bit=F("event_flags").bitand(EVENT_BITS[EventKind.OPENED]))
        .values("sent_by_id", "day")
        .annotate(sent=Count("id"), delivered=Sum("delivered_bit"), opened=Sum("opened_bit"))
    )
    d, o = EVENT_BITS[EventKind.DELIVERED], EVENT_BITS[EventKind.OPENED]
    insert(DailyEmailStats, ["project_id", "user_id", "day", "kind", "sent", "response", "delivered", "dropped",
                             "bounced", "opened", "link_clicks", "marked_as_spam", "unsubscribed"],
           [(project.pk, r["sent_by_id"], r["day"].isoformat(), "agent", r["sent"], r["sent"],
             (r["delivered"] or 0) // d, 0, 0, (r["opened"] or 0) // o, 0, 0, 0) for r in rows], False)


def _agent_states(rng, agents, project, now) -> None:
    rows = []
    for agent in agents:
        moment = now - dt.timedelta(days=30)
        while moment < now:
            state = rng.choice(("available", "email", "email", "break"))
            length = dt.timedelta(minutes=rng.randint(5, 90))
            rows.append((agent.pk, state, db_datetime(moment), db_datetime(min(now, moment + length)), project.pk))
            moment += length + dt.timedelta(hours=rng.choice((0, 0, 14)))
    insert(AgentStateChange, ["user_id", "state", "at", "ended_at", "project_id"], rows, False)




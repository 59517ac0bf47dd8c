from django.core.management.base import BaseCommand, CommandError

from postdesk.core import clock
from postdesk.retention import services

LABELS = (
    ("emails", "emails"),
    ("tickets", "tickets"),
    ("records", "records anonymised"),
    ("raw_messages", "raw messages"),
    ("attachments", "attachments"),
    ("threads", "threads"),
    ("events", "delivery events"),
    ("incoming", "incoming messages"),
    ("suppressed", "addresses suppressed"),
)


def describe(counts: dict) -> str:
    return ", ".join(f"{counts.get(key, 0):,} {label}" for key, label in LABELS)


class Command(BaseCommand):
    help = (
        "Automatic deletion. `postdesk retention run [--now ISO-8601] [--dry-run]`: delete the emails, tickets and "
        "personal data due as of that moment (default: now) in every project with automatic deletion on; print counts."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="run automatic deletion and anonymisation")
        run.add_argument(
            "--now", help="the moment to run as of, ISO 8601 (naive values are UTC); default: now"
        )
        run.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
        run.add_argument("--project", action="append", help="only this project (key); may be repeated")
        run.add_argument("--batch-size", type=int, default=services.BATCH, help="emails per transaction")
        run.add_argument(
            "--vacuum",
            action="store_true",
            help="afterwards VACUUM the database (SQLite) or VACUUM FULL the touched tables (PostgreSQL)",
        )

    def handle(self, *args, action, **options):
        from postdesk.projects.models import Project

        as_of = None
        if options.get("now"):
            try:
                as_of = clock.parse_iso(options["now"])
            except ValueError:
                raise CommandError(f"--now: not an ISO 8601 moment: {options['now']!r}")
        projects = None
        if options.get("project"):
            projects = list(Project.objects.filter(key__in=options["project"]))
            missing = set(options["project"]) - {p.key for p in projects}
            if missing:
                raise CommandError(f"--project: no such project: {', '.join(sorted(missing))}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size: at least 1")
        result = services.run(
            as_of,
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            projects=projects,
            vacuum=True if options["vacuum"] else None,
        )
        verb = "would delete" if result.dry_run else "deleted"
        self.stdout.write(
            f"retention as of {result.as_of.isoformat()}{' (dry run: nothing changed)' if result.dry_run else ''}"
        )
        if not result.projects:
            self.stdout.write("no project has automatic deletion on")
        for key, entry in result.projects.items():
            self.stdout.write(
                f"project {key} (after {entry['days']} days, cutoff {entry['cutoff']}): {verb} "
                f"{describe(entry['counts'])}"
            )
        self.stdout.write(f"total: {verb} {describe(result.totals())}")
        maintenance = result.maintenance
        if maintenance and "skipped" not in maintenance:
            parts = [f"full-text index merged in {maintenance.get('fts_optimize_seconds', 0)} s"]
            if "vacuum_seconds" in maintenance:
                parts.append(f"VACUUM {maintenance['vacuum_seconds']} s")
            if "checkpoint" in maintenance:
                parts.append(f"write-ahead log {maintenance['checkpoint']}")
            self.stdout.write("maintenance: " + ", ".join(parts))

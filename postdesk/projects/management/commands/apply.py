import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from postdesk.projects.config import ConfigFileError, apply_text


class Command(BaseCommand):
    help = "Apply a declarative configuration file (YAML or JSON): all-or-nothing, idempotent, prints what changed."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the configuration file, or - for standard input")

    def handle(self, *args, file, **options):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}")
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text")
        try:
            changes = apply_text(text)
        except ConfigFileError as exc:
            raise CommandError(f"{file}: invalid configuration, nothing changed: {exc}")
        if not changes:
            self.stdout.write("nothing changed")
            return
        for line in changes:
            self.stdout.write(line)
        self.stdout.write(f"{len(changes)} change(s) applied")

"""`postdesk demo` (what `make demo` runs): migrate, apply demo/config.yaml, print the URLs and logins, serve."""

from pathlib import Path

import yaml
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from postdesk.projects.config import ConfigFileError, apply_text

DEMO_CONFIG = Path(__file__).resolve().parents[4] / "demo" / "config.yaml"


class Command(BaseCommand):
    help = "Run the demo: migrate, apply demo/config.yaml, then serve every role in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--config", default=str(DEMO_CONFIG))
        parser.add_argument("--http", default="127.0.0.1:8000")
        parser.add_argument("--smtp", default="127.0.0.1:2525")
        parser.add_argument("--lmtp", default="127.0.0.1:2424")

    def handle(self, *args, **options):
        call_command("migrate", verbosity=0, interactive=False)
        text = Path(options["config"]).read_text(encoding="utf-8")
        try:
            changes = apply_text(text)
        except ConfigFileError as exc:
            raise CommandError(f"{options['config']}: {exc}")
        self.stdout.write(f"applied {options['config']}: {len(changes) or 'no'} change(s)")
        spec = yaml.safe_load(text)
        http = options["http"]
        self.stdout.write("")
        self.stdout.write(f"  Web UI        http://{http}/")
        self.stdout.write(f"  API docs      http://{http}/api/docs")
        self.stdout.write(f"  SMTP          {options['smtp']}   LMTP {options['lmtp']}")
        for account in spec.get("accounts", []):
            if account.get("protocol") == "forwarding":
                self.stdout.write(f"  Send mail to  {account['address']} (project {account['project']})")
        self.stdout.write("  Logins:")
        for user in spec.get("users", []):
            self.stdout.write(f"    {user['username']:<12} {user.get('password', ''):<16} {user['role']}")
        self.stdout.write("")
        call_command("serve", http=options["http"], smtp=options["smtp"], lmtp=options["lmtp"])

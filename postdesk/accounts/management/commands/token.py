from django.core.management.base import BaseCommand, CommandError

from postdesk.accounts.services import create_token_for
from postdesk.core.errors import DomainError


class Command(BaseCommand):
    help = "API tokens. `postdesk token create USERNAME` prints a new token (the last line of output)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token for a user")
        create.add_argument("username")
        create.add_argument("--name", default="", help="a label to tell tokens apart")

    def handle(self, *args, action, **options):
        try:
            token = create_token_for(options["username"], options["name"])
        except DomainError as exc:
            raise CommandError(str(exc))
        self.stderr.write(f"API token for {options['username']} (shown once; store it safely):")
        self.stdout.write(token)

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Benchmark helpers. `postdesk bench populate --emails N [--project KEY]`: a synthetic history."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        populate = sub.add_parser("populate", help="fill the database with a realistic synthetic history")
        populate.add_argument("--emails", type=int, required=True)
        populate.add_argument("--project", default="101")
        populate.add_argument("--seed", type=int, default=1)

    def handle(self, *args, action, **options):
        from postdesk.reports.populate import populate

        result = populate(options["emails"], options["project"], options["seed"], out=self.stdout.write)
        self.stdout.write(f"populated {result['emails']:,} emails and {result['tickets']:,} tickets "
                          f"in {result['seconds']} s")

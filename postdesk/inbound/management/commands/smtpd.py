from django.core.management.base import BaseCommand, CommandError

from postdesk.core.netaddr import AddressError, ensure_free, parse_hostport


class Command(BaseCommand):
    help = "Run the SMTP and LMTP listener for forwarded inbound mail."

    def add_arguments(self, parser):
        parser.add_argument(
            "--smtp", default="127.0.0.1:2525", help="HOST:PORT, or 'off' (default 127.0.0.1:2525)"
        )
        parser.add_argument(
            "--lmtp", default="127.0.0.1:2424", help="HOST:PORT, or 'off' (default 127.0.0.1:2424)"
        )

    def handle(self, *args, **options):
        from postdesk.inbound import smtpd

        addresses = {}
        try:
            for role in ("smtp", "lmtp"):
                if options[role] != "off":
                    addresses[role] = parse_hostport(options[role])
                    ensure_free(*addresses[role], role.upper())
        except AddressError as exc:
            raise CommandError(str(exc))
        smtpd.run(addresses.get("smtp"), addresses.get("lmtp"))

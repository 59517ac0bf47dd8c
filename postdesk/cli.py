"""The one command-line entry point: `postdesk <command>` runs Django's management commands."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["postdesk", *sys.argv[1:]])

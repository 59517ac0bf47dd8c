"""`postdesk web --http H:P`: the web UI and API under gunicorn (threaded workers)."""

import gc
import os

from django.core.management.base import BaseCommand, CommandError
from gunicorn.app.base import BaseApplication

from postdesk.core.netaddr import AddressError, ensure_free, parse_hostport


class WebServer(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from postdesk.wsgi import application

        # Everything loaded so far (Django, the apps, the URL and template machinery) lives as long as the process:
        # moved out of the collector's sight, a full collection no longer walks it (one took ~90 ms of a request)
        gc.collect()
        gc.freeze()
        return application


class Command(BaseCommand):
    help = "Run the web UI and API (gunicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--http", default="127.0.0.1:8000", help="HOST:PORT (default 127.0.0.1:8000)")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("POSTDESK_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("POSTDESK_WEB_THREADS", "8")))

    def handle(self, *args, **options):
        try:
            host, port = parse_hostport(options["http"])
            ensure_free(host, port, "HTTP")
        except AddressError as exc:
            raise CommandError(str(exc))
        from postdesk.outbound import sender

        sender.SEND_FROM_PROCESS = True  # replies go to the relay from the web process, right after the commit
        WebServer(
            {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": options["workers"],
                "threads": options["threads"],
                "worker_class": "gthread",
                "timeout": 60,
                "graceful_timeout": 10,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "proc_name": "postdesk-web",
                "forwarded_allow_ips": "127.0.0.1",
            }
        ).run()

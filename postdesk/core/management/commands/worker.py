"""`postdesk worker`: the background job consumer (huey), with recovery of unfinished work at start-up."""

import logging

from django.core.management.base import BaseCommand

log = logging.getLogger("postdesk.worker")


class Command(BaseCommand):
    help = "Run the background worker (huey consumer)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None, help="job threads (default from settings)")

    def handle(self, *args, **options):
        from django.conf import settings
        from huey.consumer import Consumer

        from postdesk.core import jobs, tasks_registry

        tasks_registry.load_all()
        tasks_registry.recover()
        consumer = Consumer(
            jobs.huey,
            workers=options["workers"] or settings.JOBS_WORKERS,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            backoff=1.15,
            max_delay=0.5,
            check_worker_health=True,
        )
        log.info("worker started with %s threads", consumer.workers)
        consumer.run()

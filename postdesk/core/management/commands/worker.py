"""`postdesk worker`: the background job consumer (huey), with recovery of unfinished work at start-up."""

import gc
import logging

from django.core.management.base import BaseCommand

log = logging.getLogger("postdesk.worker")


class Command(BaseCommand):
    help = "Run the background worker (huey consumer)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None, help="job workers (default from settings)")
        parser.add_argument("--worker-type", choices=("process", "thread"), default=None,
                            help="processes use every core for parsing; threads use less memory")

    def handle(self, *args, **options):
        from django.conf import settings
        from django.db import connections
        from huey.consumer import Consumer

        from postdesk.core import jobs, tasks_registry
        from postdesk.inbound.language import warm_up

        tasks_registry.load_all()
        tasks_registry.recover()
        warm_up()  # load the language models once, before the workers fork: they share the memory
        connections.close_all()  # no database connection may cross a fork
        # the language models and everything loaded so far live as long as the process: out of the collector's
        # sight, collections no longer walk them (processing inbound mail took ~15 % less CPU), and the forked
        # workers no longer touch (copy) their pages when the collector would have
        gc.collect()
        gc.freeze()
        jobs.listen_for_jobs()
        consumer = Consumer(
            jobs.huey,
            workers=options["workers"] or settings.JOBS_WORKERS,
            worker_type=options["worker_type"] or settings.JOBS_WORKER_TYPE,
            periodic=True,
            # with huey's SQLite store, idle workers wait on its doorbell (jobs.Doorbell) and take a job the moment
            # it is queued; with Redis they block on the queue. These delays apply only after an error reading it.
            initial_delay=0.002,
            backoff=1.5,
            max_delay=0.01,
            check_worker_health=True,
        )
        log.info("worker started: %s %s workers", consumer.workers, consumer.worker_type)
        consumer.run()

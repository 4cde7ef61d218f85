from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from mdm_portal.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Copy the beat schedule defined in code (mdm_portal/schedules.py) into django-celery-beat."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Overwrite intervals and enabled flags edited in the admin."
        )

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        for schedule in SCHEDULES:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=schedule.every_seconds, period=IntervalSchedule.SECONDS
            )
            task = PeriodicTask.objects.filter(name=schedule.name).first()
            if task is None:
                PeriodicTask.objects.create(
                    name=schedule.name, task=schedule.task, interval=interval, description=schedule.description
                )
                self.stdout.write(f"created  {schedule.name} (every {schedule.every_seconds}s)")
                continue
            task.task, task.description = schedule.task, schedule.description
            if reset:
                task.interval, task.crontab, task.enabled = interval, None, True
            task.save()
            self.stdout.write(f"{'reset' if reset else 'kept'}    {schedule.name}")
        known = {s.name for s in SCHEDULES}
        stale = PeriodicTask.objects.exclude(name__in=known).exclude(name__startswith="celery.")
        for task in stale:
            self.stdout.write(f"note     '{task.name}' is not defined in code; left as it is")

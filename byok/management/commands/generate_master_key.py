"""Print a new random master key for BYOK_MASTER_KEY."""

from django.core.management.base import BaseCommand

from byok_project.envconfig import new_master_key


class Command(BaseCommand):
    help = "Print a new BYOK_MASTER_KEY value (32 random bytes, urlsafe base64)."
    requires_system_checks = []

    def handle(self, *args, **options):
        self.stdout.write(new_master_key())

"""Create the superuser named by BYOK_ADMIN_USER / BYOK_ADMIN_PASSWORD if it does not exist."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the superuser from BYOK_ADMIN_USER and BYOK_ADMIN_PASSWORD when set and missing."

    def handle(self, *args, **options):
        username = os.environ.get("BYOK_ADMIN_USER", "").strip()
        password = os.environ.get("BYOK_ADMIN_PASSWORD", "")
        if not username:
            return
        if not password:
            raise CommandError("BYOK_ADMIN_USER is set but BYOK_ADMIN_PASSWORD is empty.")
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"Superuser {username!r} exists; left unchanged.")
            return
        users.objects.create_superuser(username=username, password=password, email="")
        self.stdout.write(f"Created superuser {username!r}.")

"""`manage.py ws_stop [--user NAME] [--reason TEXT]`: stop running websocket chats on every server process."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from byok.ws.broadcast import broadcast_stop


class Command(BaseCommand):
    help = "Stop the running chat requests of every websocket (or of one user's), on every server process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", help="Only this user's sockets (username).")
        parser.add_argument("--reason", default="", help="Shown to the users in a chat.notice.")

    def handle(self, *args, user=None, reason="", **options) -> None:
        user_id = None
        if user:
            found = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: user}).first()
            if found is None:
                raise CommandError(f"No user {user!r}.")
            user_id = found.pk
        if not settings.REDIS_URL:
            self.stderr.write("REDIS_URL is not set: the in-memory channel layer reaches no server process from here.")
        if not broadcast_stop(user_id, reason):
            raise CommandError("The stop could not be sent through the channel layer (see the log).")
        self.stdout.write(f"Stop sent to {'the sockets of ' + user if user else 'every socket'}.")

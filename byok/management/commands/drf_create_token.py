"""`manage.py drf_create_token <user>`: a new API token for a user, printed once (stored hashed).

Replaces DRF's command of the same name (byok comes before `rest_framework` in
INSTALLED_APPS): tokens are stored as hashes (`byok.keys.tokens`), so an
existing token can never be printed again. A user without a token gets one; a
user who has one keeps it and the command fails saying so, unless `-r` asks
for a new one (the old one then stops working). Issuing is audited (actor `cli`).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from byok.audit import Actor
from byok.keys.tokens import issue_token


class Command(BaseCommand):
    help = "Issue a new API token for a user (printed once; the user's previous token stops working)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", help="Replace the user's token (the old one stops working)."
        )

    def handle(self, *args, **options):
        username = options["username"]
        try:
            user = get_user_model()._default_manager.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        if not options["reset"] and Token.objects.filter(user=user).exists():
            raise CommandError(
                f"{username} has a token already; it is stored hashed and cannot be shown again. "
                "Use -r (make token USER=... RESET=1) to replace it."
            )
        token = issue_token(user, actor=Actor("cli"))
        self.stdout.write(f"Generated token {token} for user {username}")

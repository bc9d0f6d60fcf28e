#!/usr/bin/env python
"""Django's command-line utility for byok."""

import os
import sys

# Commands that need no configuration: they run before the settings (which require secrets) load,
# so a new deployment can create its secrets from an empty environment.
_WITHOUT_SETTINGS = {"generate_master_key"}


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in _WITHOUT_SETTINGS and not set(sys.argv[2:]) & {"-h", "--help"}:
        from byok_project.envconfig import new_master_key

        print(new_master_key())
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake deserves one clear line, not a traceback.
        sys.exit(f"byok: configuration error: {exc}")


if __name__ == "__main__":
    main()

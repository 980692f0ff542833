from io import StringIO

from django.core.management import call_command
from django.test import TestCase


class MigrationsTests(TestCase):
    def test_models_and_migrations_are_in_sync(self):
        """Fails when a model changed without a matching migration."""
        out = StringIO()
        try:
            call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=StringIO())
        except SystemExit:
            self.fail(f"Missing migrations:\n{out.getvalue()}")

    def test_system_checks_pass(self):
        call_command("check", stdout=StringIO())

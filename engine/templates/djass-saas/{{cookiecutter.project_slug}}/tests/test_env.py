import os
import tempfile
from pathlib import Path
from unittest import mock

from django.test import SimpleTestCase

from config.env import env_bool, env_float, env_int, env_list, env_str, load_dotenv


class EnvHelpersTests(SimpleTestCase):
    def test_empty_values_count_as_unset(self):
        with mock.patch.dict(os.environ, {"SOME_KEY": ""}):
            self.assertEqual(env_str("SOME_KEY", "default"), "default")
            self.assertTrue(env_bool("SOME_KEY", True))

    def test_typed_values(self):
        values = {"A_BOOL": "off", "AN_INT": "42", "A_FLOAT": "0.5", "A_LIST": "a.com, b.com,,"}
        with mock.patch.dict(os.environ, values):
            self.assertFalse(env_bool("A_BOOL", True))
            self.assertEqual(env_int("AN_INT"), 42)
            self.assertEqual(env_float("A_FLOAT"), 0.5)
            self.assertEqual(env_list("A_LIST"), ["a.com", "b.com"])

    def test_invalid_boolean_raises(self):
        with mock.patch.dict(os.environ, {"A_BOOL": "maybe"}), self.assertRaises(ValueError):
            env_bool("A_BOOL")

    def test_load_dotenv_does_not_override(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ".env"
            path.write_text('# comment\nexport FIRST="one"\nSECOND=two\nBROKEN LINE\n', encoding="utf-8")
            environ = {"SECOND": "already set"}
            loaded = load_dotenv(path, environ)
        self.assertEqual(loaded, ["FIRST"])
        self.assertEqual(environ, {"FIRST": "one", "SECOND": "already set"})

    def test_missing_dotenv_is_ignored(self):
        self.assertEqual(load_dotenv("/nonexistent/.env", {}), [])

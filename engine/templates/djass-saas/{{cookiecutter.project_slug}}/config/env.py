"""Small helpers to read configuration from the environment (12-factor style).

Values come from real environment variables first; a local ``.env`` file
(see ``.env.example``) only fills in variables that are not already set.
An empty value counts as "not set", so copying ``.env.example`` verbatim
keeps every optional integration switched off.
"""

import os
from pathlib import Path

TRUE_VALUES = {"1", "true", "yes", "on", "y"}
FALSE_VALUES = {"0", "false", "no", "off", "n"}


def load_dotenv(path, environ=None):
    """Load ``KEY=VALUE`` lines from ``path`` without overriding existing keys.

    Supports comments, blank lines, an optional ``export`` prefix and values
    wrapped in single or double quotes. Returns the keys that were set.
    """
    environ = os.environ if environ is None else environ
    path = Path(path)
    loaded = []
    if not path.is_file():
        return loaded
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, separator, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not separator or not key:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key not in environ:
            environ[key] = value
            loaded.append(key)
    return loaded


def env_str(name, default=""):
    """Return the variable as a string, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_bool(name, default=False):
    """Return the variable as a boolean (1/0, true/false, yes/no, on/off)."""
    value = env_str(name).lower()
    if not value:
        return default
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def env_int(name, default=0):
    """Return the variable as an integer."""
    value = env_str(name)
    return int(value) if value else default


def env_float(name, default=0.0):
    """Return the variable as a float."""
    value = env_str(name)
    return float(value) if value else default


def env_list(name, default=()):
    """Return a comma-separated variable as a list of non-empty items."""
    value = env_str(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]

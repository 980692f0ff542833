"""The one module that reaches into Copier's internals.

Copier's public API renders a whole project (``run_copy``); forgeflow also needs what sits
behind it: the questions of a template, each one's default given earlier answers, its
``when``, choices and validator, evaluated exactly as Copier evaluates them, so that a
question forgeflow asks and a value it accepts are what ``copier copy`` would ask and
accept. That is Copier's ``Worker``, ``Question`` and ``AnswersMap``; they are imported
here and nowhere else, so a Copier release that moves them breaks one file (and the
parity tests, tests/engine/test_copier_parity.py, say so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:  # Copier >= 9.5 keeps its modules private; earlier 9.x releases exported them.
    from copier._main import Worker, run_copy
    from copier._settings import SettingsModel
    from copier._tools import cast_to_bool
    from copier._types import MISSING
    from copier._user_data import AnswersMap, Question
except ImportError:  # pragma: no cover - older Copier
    from copier.main import Worker, run_copy  # type: ignore[no-redef, unused-ignore]
    from copier.settings import SettingsModel  # type: ignore[no-redef, unused-ignore]
    from copier.tools import cast_to_bool  # type: ignore[no-redef, unused-ignore]
    from copier.types import MISSING  # type: ignore[no-redef, unused-ignore]
    from copier.user_data import AnswersMap, Question  # type: ignore[no-redef, unused-ignore]
from copier.errors import CopierError

__all__ = ["MISSING", "AnswersMap", "CopierError", "Question", "Worker", "cast_to_bool", "run_copy", "worker"]


def settings() -> Any:
    """Copier's user settings, empty: a user's ``settings.yml`` on the worker (its own
    defaults, or a ``trust`` list that would lift the rules for untrusted templates) must
    not change what a template renders."""
    return SettingsModel()


def worker(template_path: Path, dst_path: Path, data: dict[str, Any], *, trusted: bool) -> Any:
    """A Copier worker as ``copier copy --defaults --data ...`` makes it; nothing runs yet."""
    return Worker(
        src_path=str(template_path),
        dst_path=dst_path,
        data=data,
        defaults=True,
        quiet=True,
        unsafe=trusted,
        skip_tasks=True,
        settings=settings(),
    )

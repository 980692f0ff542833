"""The app as ``forgeflow api`` serves it keeps what its startup made out of the garbage
collector's passes (gc.freeze); apps made for tests, in a shared process, freeze nothing."""

from __future__ import annotations

import gc

from api.main import create_app


async def test_the_served_app_freezes_its_startup(settings):
    gc.unfreeze()
    app = create_app(settings, freeze_startup=True)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000  # modules, routes, schemas, tables
    finally:
        gc.unfreeze()


async def test_an_app_for_tests_freezes_nothing(settings):
    gc.unfreeze()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0

"""Fixtures of the workflow tests."""

from __future__ import annotations

import pytest

from store.projects import create_project

TEMPLATE = "widget-lib"


@pytest.fixture
def project_row(db, make_key):
    def make(**answers):
        key = make_key()
        with db.session() as session:
            project = create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name="Widget Lib",
                slug="widget_lib",
                description="",
                template=TEMPLATE,
                input_payload=answers,
            )
        return key, project.id

    return make

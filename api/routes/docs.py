"""``/docs``: Swagger UI from the swagger-ui-bundle-v2 package, served by the API itself.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN (and a favicon from FastAPI's
site), so it is blank on a machine without internet access; these routes are FastAPI's
documented self-hosting recipe with the assets taken from a PyPI package. ``/redoc`` is
not served: it, too, came from a CDN, and no package ships it here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from api.errors import ApiError

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
OAUTH2_REDIRECT_PATH = f"{DOCS_PATH}/oauth2-redirect"
# Only what the page loads: the package holds more (source maps, an index.html of its own).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Swagger UI otherwise asks validator.swagger.io for a badge about every non-local document.
UI_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        swagger_ui_parameters=UI_PARAMETERS,
    )


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(f"{ASSETS_PATH}/{{name}}")
async def swagger_ui_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:  # a fixed list: no path from the URL ever reaches the filesystem
        raise ApiError(404, "not_found", "validation", "No such endpoint.")
    # Versioned with the package: a day in caches is safe and spares the 1.5 MB bundle.
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(str(swagger_ui_path / name), media_type=media_type, headers=headers)

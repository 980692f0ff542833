"""`/docs` works on a machine without internet access: the page and everything it loads
come from the API itself (FastAPI's default page loads Swagger UI from a CDN)."""

from __future__ import annotations

import re

import httpx

EXTERNAL = re.compile(r"https?://|//cdn\.|cdn\.jsdelivr|unpkg\.com")


async def test_docs_page_and_its_assets_are_served_locally(api):
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert not EXTERNAL.search(html), EXTERNAL.search(html)
        # Swagger UI would otherwise ask validator.swagger.io about the document.
        assert '"validatorUrl": null' in html

        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        spec_url = re.search(r"url: '([^']+)'", html).group(1)
        assert {a.rsplit("/", 1)[-1] for a in assets} == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
        for url in [*assets, spec_url]:
            assert url.startswith("/") and not url.startswith("//"), url  # same origin
            loaded = await client.get(url)
            assert loaded.status_code == 200, (url, loaded.status_code)
            assert loaded.content, url
            if url.endswith(".css"):
                # Everything a stylesheet pulls in is inline (data:) or relative.
                for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", loaded.text):
                    assert ref.startswith("data:") or not EXTERNAL.match(ref), ref
                assert "@import" not in loaded.text
            if url.endswith(".js"):
                # The bundle names URLs in strings (RFCs, licences) but loads nothing from a CDN.
                assert "cdn." not in loaded.text
                bundle = loaded.text

        # Swagger UI renders OpenAPI 3.1 only from version 5 on (4.x shows a blank error).
        spec = (await client.get(spec_url)).json()
        assert spec["openapi"].startswith("3.1")
        version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
        assert version is not None and int(version.group(1)) >= 5

        redirect = await client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200 and not EXTERNAL.search(redirect.text.split("-->", 1)[-1])
        # Only the page's own files: the package's other files are not reachable by name.
        for other in ("index.html", "swagger-ui-bundle.js.map", "..%2F__init__.py", "%2e%2e%2f__init__.py"):
            assert (await client.get(f"/docs/assets/{other}")).status_code == 404, other
        # The pages stay out of the OpenAPI document.
        assert not any(path.startswith("/docs") for path in spec["paths"])

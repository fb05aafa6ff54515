"""Data Docs that work with no internet: GX's pages load bootstrap, jQuery, font-awesome,
bootstrap-table and vega from eight CDNs; inside a bank's network the index is then unstyled and its
list of validation results empty.

``make_offline(site)`` copies the same releases, vendored from the npm registry into
``expectations/data_docs_vendor/`` (versions and licences in its README), to ``<site>/static/vendor``
and points every page at them (relative paths, so the site also opens from disk). Subresource
integrity attributes go with the CDN URLs: they pin the CDN's bytes, and the files are local now.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "data_docs_vendor"

# The CDN URL each GX template uses -> the vendored file (under VENDOR).
CDN_FILES = {
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.css",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/filter-control/bootstrap-table-filter-control.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/filter-control/bootstrap-table-filter-control.min.js",
}

# GX's logo comes from its S3 bucket, with the data context id in the query string (a tracking
# request); the package ships the same images into the site's static/images.
_GX_ASSET = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                       r"(?P<name>[A-Za-z0-9_.-]+)(?:\?[^\"')\s]*)?")
_SRI = re.compile(r'\s+(?:integrity="[^"]*"|crossorigin="[^"]*")')
_EXTERNAL = re.compile(r'(?:src|href)="(https?://(?!127\.0\.0\.1|localhost)[^"]+)"')


def make_offline(site: Path) -> list[str]:
    """Vendor the assets into ``site`` and rewrite every page; returns external URLs left behind
    in ``src``/``href`` attributes (links a person may follow, e.g. GX's own documentation)."""
    target = site / "static" / "vendor"
    shutil.copytree(VENDOR, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    images = site / "static" / "images"
    leftovers: set[str] = set()
    pages = [*site.rglob("*.html"), *(css for css in site.rglob("*.css") if target not in css.parents)]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        original = text
        prefix = Path(os.path.relpath(target, page.parent)).as_posix()
        for url, local in CDN_FILES.items():
            text = text.replace(f'"{url}"', f'"{prefix}/{local}"')
        text = _SRI.sub("", text)

        def local_image(match: re.Match, page: Path = page) -> str:
            name = match["name"] if (images / match["name"]).exists() else "logo-long.png"
            return Path(os.path.relpath(images / name, page.parent)).as_posix()

        text = _GX_ASSET.sub(local_image, text)
        if text != original:
            page.write_text(text, encoding="utf-8")
        leftovers.update(url for url in _EXTERNAL.findall(text) if not _is_link(text, url))
    return sorted(leftovers)


def _is_link(text: str, url: str) -> bool:
    """An ``<a href>`` a person may follow (GX's website), not something the page loads."""
    return f'<a href="{url}"' in text or re.search(rf'<a [^>]*href="{re.escape(url)}"', text) is not None

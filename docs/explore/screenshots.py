"""Render README's two explorer screenshots from the embedded atlas' site in headless chromium (Playwright).

    python docs/explore/screenshots.py [--site DIR]      # builds (or updates) the site first
"""
from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from neuron_atlas.explore import build_site

HERE = Path(__file__).parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def save(png: bytes, path: Path) -> None:
    """Write the screenshot with a 256-colour palette when Pillow is there (a third of the bytes, same look)."""
    try:
        from PIL import Image
    except ImportError:
        path.write_bytes(png)
        return
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path(tempfile.gettempdir()) / "neuron-atlas-explorer")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    build_site(None, args.site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 760})
        page.goto((args.site / "models/gemma-3-270m/index.html").resolve().as_uri())
        top = page.locator("#similarity").bounding_box()["y"]
        save(page.screenshot(full_page=True, clip={"x": 0, "y": top - 10, "width": 1000, "height": 760}),
             HERE / "model-similarity.png")
        page.goto((args.site / "models/gemma-3-270m/lang/tgl_Latn.html").resolve().as_uri())
        end = page.locator("#relatives").bounding_box()
        save(page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1000, "height": end["y"] + end["height"]}),
             HERE / "language-page.png")
        browser.close()


if __name__ == "__main__":
    main()

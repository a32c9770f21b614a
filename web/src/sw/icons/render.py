"""Renders the notification icons (see README.md); run from the repository root."""

from pathlib import Path

from playwright.sync_api import sync_playwright

ICONS = {
    "order": ("📦", "#2563eb"),
    "message": ("💬", "#0891b2"),
    "mention": ("@", "#7c3aed"),
    "task": ("✅", "#16a34a"),
    "payment": ("💳", "#ca8a04"),
    "alert": ("⚠️", "#dc2626"),
    "bell": ("🔔", "#475569"),
}
out = Path("web/src/sw/icons")
with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 96, "height": 96})
    for name, (glyph, color) in ICONS.items():
        disc = (
            "width:96px;height:96px;border-radius:50%;display:flex;align-items:center;"
            f"justify-content:center;font:bold 52px/1 sans-serif;color:#fff;background:{color}"
        )
        page.set_content(f'<body style="margin:0"><div style="{disc}">{glyph}</div></body>')
        page.screenshot(path=str(out / f"{name}.png"), omit_background=True)
    browser.close()

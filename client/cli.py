"""``fedlife-site``: what a partner site's operator runs."""

from __future__ import annotations

def main() -> None:
    pass

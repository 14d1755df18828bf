"""``fedlife-coord``: what the coordinator's operator runs."""

from __future__ import annotations

def main() -> None:
    pass

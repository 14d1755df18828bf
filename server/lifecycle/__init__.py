"""Keeping the federation current: retraining triggers, warm starts, champion and
challenger, registry aliases, events and scheduled jobs."""

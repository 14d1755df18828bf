"""Raw files to clean rows.

Ingest, validate, clean, prepare (full or incremental), the quality gate, profile,
schema inference and ``init``.
"""

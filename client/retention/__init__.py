"""The end of the data lifecycle: retention, archive, erasure, Delta history and their CLI."""

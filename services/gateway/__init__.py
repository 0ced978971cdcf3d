"""Gateway (FastAPI): ingest, query, operator actions, live stream, wall and console. Issue 7."""

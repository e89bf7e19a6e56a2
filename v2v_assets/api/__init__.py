"""`v2v api`: the HTTP API over the inbox and the Dagster instance (FastAPI, served by uvicorn)."""
from .app import create_app

__all__ = ["create_app"]

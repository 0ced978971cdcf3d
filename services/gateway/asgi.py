"""ASGI entry point: `uvicorn services.gateway.asgi:app`."""

from services.gateway.app import create_app

app = create_app()

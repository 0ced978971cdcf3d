from __future__ import annotations

from pydantic import BaseModel, Field


class Rejected(BaseModel):
    position: int = Field(description="Index of the event in the request (0 for a single event)")
    id: str | None = None
    reason: str


class IngestAccepted(BaseModel):
    accepted: list[str] = Field(description="Ids of the events taken (published to Kafka, acknowledged)")
    duplicates: list[str] = Field(
        default_factory=list, description="Ids already received before: accepted again, not re-published"
    )


class IngestRejected(BaseModel):
    detail: str
    rejected: list[Rejected]

"""Request bodies of the retriever's internal HTTP API (``/internal/v1``) that services/contracts.py lacks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.contracts import CollectionConfig, DocumentIn

__all__ = ["AddDocumentsRequest", "CreateCollectionRequest"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CreateCollectionRequest(_Wire):
    tenant: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=256)
    config: CollectionConfig = CollectionConfig()


class AddDocumentsRequest(_Wire):
    tenant: str = Field(min_length=1)
    collection: str = Field(min_length=1)
    documents: list[DocumentIn]

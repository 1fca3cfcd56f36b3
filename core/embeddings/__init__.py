"""Embedders: one small interface, several models behind it."""

from core.embeddings.base import Embedder, TaskType

__all__ = ["Embedder", "TaskType"]

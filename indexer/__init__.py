"""Incremental indexer: scan → decode → embed → write (FAISS + SQLite catalog)."""

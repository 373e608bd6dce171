"""Artifact blobs: content-addressed storage behind a small interface, and byte ranges."""

"""Dossier workflow (giải quyết) service."""

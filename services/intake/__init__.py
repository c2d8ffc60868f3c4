"""Intake (tiếp nhận) service."""

"""Postal tracking (bưu chính công ích) service."""

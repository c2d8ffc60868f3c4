"""Built-in identity provider tables (schema `auth`), written only by the gateway."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text, func

metadata = MetaData(schema="auth")

users = Table(
    "users", metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(30), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("name", String(200), nullable=False, comment="full name (họ và tên), printed on forms"),
    Column("agency_code", String(50)),
    Column("office_code", String(50)),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("title", String(200), comment="chức danh, printed on forms under the name"),
)

clients = Table(
    "clients", metadata,
    Column("client_id", String(100), primary_key=True),
    Column("secret_hash", String(300), nullable=False),
    Column("role", String(30), nullable=False),
    Column("name", String(200), nullable=False),
    Column("partner_code", String(50)),
    Column("agency_code", String(50)),
    Column("office_code", String(50)),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

signing_keys = Table(
    "signing_keys", metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

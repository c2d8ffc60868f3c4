"""Load the demo data, idempotently: people and clients, then each service's own `seed` module."""

from __future__ import annotations

import asyncio
import importlib

from sqlalchemy.dialects.postgresql import insert

from gateway.models import clients, users
from gateway.passwords import hash_secret
from scripts.demo_data import CLIENTS, USERS
from shared.db import Database
from shared.settings import Settings, get_settings

SERVICE_SEEDS = [
    "services.intake.seed",
    "services.dossier_workflow.seed",
    "services.postal_tracking.seed",
    "services.queue_ticket.seed",
]


async def seed_identities(db: Database) -> None:
    async with db.transaction() as tx:
        for u in USERS:
            row = insert(users).values(
                username=u.username, password_hash=hash_secret(u.password), role=u.role,
                subject=u.subject, name=u.name, title=u.title, agency_code=u.agency_code,
                office_code=u.office_code,
            )
            # An existing demo user keeps its password; its full name and title follow the demo data.
            await tx.execute(row.on_conflict_do_update(
                index_elements=[users.c.username], set_={"name": row.excluded.name, "title": row.excluded.title}))
        for c in CLIENTS:
            await tx.execute(insert(clients).values(
                client_id=c.client_id, secret_hash=hash_secret(c.secret), role=c.role,
                name=c.name, partner_code=c.partner_code, agency_code=c.agency_code,
                office_code=c.office_code,
            ).on_conflict_do_nothing())


async def seed_all(settings: Settings) -> None:
    if settings.environment == "production":
        raise SystemExit("demo data is never loaded in production")
    db = Database(settings, application_name="motcua-seed")
    try:
        await seed_identities(db)
        for name in SERVICE_SEEDS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                raise
            async with db.transaction() as tx:
                await module.seed(tx)
    finally:
        await db.dispose()


def main() -> None:
    asyncio.run(seed_all(get_settings()))


if __name__ == "__main__":
    main()

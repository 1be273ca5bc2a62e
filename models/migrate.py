"""Create or upgrade the schema with Alembic, and load the reference communes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, insert, select

from geo.communes import CommuneRecord
from models.commune import Commune

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision (creates it on an empty database)."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration from the models (a developer's tool)."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the latest migration."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == head


def load_communes(engine: Engine, records: list[CommuneRecord]) -> int:
    """Insert the reference communes the database lacks; return how many are known."""
    with engine.begin() as connection:
        count = connection.scalar(select(func.count()).select_from(Commune)) or 0
        if count == len(records):
            return count
        existing = set(connection.scalars(select(Commune.insee)))
        rows = [
            {
                "insee": r.insee,
                "name": r.name,
                "departement": r.departement,
                "postal_codes": ";".join(r.postal_codes),
                "population": r.population,
                "lat": r.lat,
                "lon": r.lon,
            }
            for r in records
            if r.insee not in existing
        ]
        if rows:
            connection.execute(insert(Commune), rows)
    return len(records)

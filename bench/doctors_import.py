"""CSV import of a census of 10,000 doctors (target < 10 s), SQLite and PostgreSQL (127.0.0.1).

Ours: one multi-row INSERT for the new doctors, their secondary sites and their events. Naive:
the coordinator's one-doctor save (an ORM object, a flush and an event each) called per row,
secondary sites left out. Then a re-import of the same file (every row matched by RPPS, every
site matched by its address, nothing created). One doctor in five has a second site ("Adresse
2", "Code postal 2", "Commune 2").
Run: .venv/bin/python -m bench.doctors_import
"""

from __future__ import annotations

import os
import random
import time

from sqlalchemy import Engine, delete, func, select

from bench._db import postgres, sqlite
from geo.communes import gazetteer
from models import Doctor, DoctorEvent, DoctorSite, Territory, utcnow
from models.engine import make_sessionmaker
from orientation.services.doctor_import import import_doctors, parse_row
from orientation.services.doctors import rpps_with_key, save_doctor
from orientation.services.territories import TerritoryInput, add_territory

ROWS = 10_000
HEADER = (
    "Nom;Prénom;RPPS;Adresse;Code postal;Commune;Téléphone;E-mail;"
    "Accepte de nouveaux patients;Combien;Enfants de moins de 6 ans;"
    "Personnes âgées et dépendantes;Suivi ALD;Visites à domicile;Rayon des visites (km);"
    "Langues;Accès de plain-pied;Adresse 2;Code postal 2;Commune 2"
)


def survey() -> bytes:
    rng = random.Random(11)
    communes = [c for c in gazetteer().by_insee.values() if c.insee.startswith("59")]
    lines = [HEADER]
    for n in range(ROWS):
        c = rng.choice(communes)
        lines.append(
            f"Médecin{n};Élise;{rpps_with_key(f'4{n:09d}')};{n} rue de la Gare;"
            f"{c.postal_codes[0]};{c.name};06{n:08d};medecin{n}@example.org;"
            f"{rng.choice(['oui', 'non', 'pause'])};{rng.randint(0, 9)};oui;oui;non;"
            f"{rng.choice(['oui', 'non'])};5;français;{rng.choice(['oui', 'non'])};"
        )
        if n % 5 == 0:
            other = rng.choice(communes)
            lines[-1] += f"{n} place de la Mairie;{other.postal_codes[0]};{other.name}"
        else:
            lines[-1] += ";;"
    return "\r\n".join(lines).encode("cp1252")


def _territory(engine: Engine) -> int:
    session = make_sessionmaker(engine)()
    codes = sorted(c for c in gazetteer().by_insee if c.startswith("59"))
    territory = add_territory(
        session,
        gazetteer(),
        TerritoryInput(
            name=f"Nord {time.time_ns()}",
            insee_codes=codes,
            contact_phone="03 20 00 00 00",
            contact_email="bench@example.org",
        ),
    )
    session.commit()
    territory_id = territory.id
    session.close()
    return territory_id


def ours(engine: Engine, territory_id: int, raw: bytes) -> tuple[float, int]:
    session = make_sessionmaker(engine)()
    territory = session.get(Territory, territory_id)
    assert territory is not None
    start = time.perf_counter()
    report = import_doctors(session, gazetteer(), territory, raw, now=utcnow(), actor_label="b")
    session.commit()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed, report.accepted


def naive(engine: Engine, territory_id: int, raw: bytes) -> tuple[float, int]:
    import csv
    import io

    from orientation.services.doctor_import import _HEADER_LOOKUP, _header_key

    session = make_sessionmaker(engine)()
    territory = session.get(Territory, territory_id)
    assert territory is not None
    start = time.perf_counter()
    reader = csv.reader(io.StringIO(raw.decode("cp1252")), delimiter=";")
    keys = [_HEADER_LOOKUP.get(_header_key(h), "") for h in next(reader)]
    for row in reader:
        data = parse_row(dict(zip(keys, row, strict=True)))
        save_doctor(session, gazetteer(), territory, data, now=utcnow(), actor_label="b")
    session.commit()
    elapsed = time.perf_counter() - start
    count = session.scalar(
        select(func.count()).select_from(Doctor).where(Doctor.territory_id == territory_id)
    )
    session.close()
    return elapsed, count or 0


def _empty(engine: Engine, territory_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(delete(DoctorEvent).where(DoctorEvent.territory_id == territory_id))
        connection.execute(delete(DoctorSite).where(DoctorSite.territory_id == territory_id))
        connection.execute(delete(Doctor).where(Doctor.territory_id == territory_id))


def main() -> None:
    raw = survey()
    print(f"CSV import, {ROWS} doctors, {len(raw) / 1024:.0f} KB (load {os.getloadavg()[0]:.1f})")
    print(f"{'database':<11} {'way':<18} {'seconds':>8} {'rows':>7}")
    with sqlite() as lite, postgres() as pg:
        for name, engine in (("SQLite", lite), ("PostgreSQL", pg)):
            if engine is None:
                continue
            territory_id = _territory(engine)
            for way, run in (("ours", ours), ("ours, re-import", ours), ("naive", naive)):
                if way == "naive":
                    _empty(engine, territory_id)
                seconds, rows = run(engine, territory_id, raw)
                print(f"{name:<11} {way:<18} {seconds:>8.2f} {rows:>7}")


if __name__ == "__main__":
    main()

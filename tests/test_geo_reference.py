"""The shipped gazetteer and contours: complete, matched as people type, checked fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo.communes import ReferenceDataError, gazetteer, normalise_name, read_communes
from geo.territory import TerritoryShape, commune_contours


def test_gazetteer_holds_every_commune_of_hauts_de_france() -> None:
    places = gazetteer()
    assert len(places) == 3782
    assert {c.departement for c in places.by_insee.values()} == {"02", "59", "60", "62", "80"}
    lille = places.get("59350")
    assert lille is not None and lille.name == "Lille"
    assert "59800" in lille.postal_codes


def test_communes_of_a_postal_code_are_listed_by_name() -> None:
    names = [c.name for c in gazetteer().communes_of_postal_code("59280")]
    assert names == sorted(names)
    assert "Armentières" in names and "Bois-Grenier" in names


@pytest.mark.parametrize(
    ("postal_code", "typed", "insee"),
    [
        ("59280", "armentieres", "59017"),
        ("59280", "ARMENTIÈRES", "59017"),
        ("59930", "la chapelle d armentieres", "59143"),
        ("59930", "La Chapelle-d’Armentières", "59143"),
        ("02600", "Coeuvres-et-Valsery", "02201"),
        ("02600", "cœuvres et valsery", "02201"),
        ("62500", "St-Omer", "62765"),
        ("62500", "saint omer", "62765"),
    ],
)
def test_commune_names_match_however_they_are_typed(
    postal_code: str, typed: str, insee: str
) -> None:
    commune = gazetteer().find(postal_code, typed)
    assert commune is not None and commune.insee == insee


def test_a_commune_of_another_postal_code_is_not_found() -> None:
    assert gazetteer().find("59000", "Armentières") is None


def test_ligature_folds_to_oe() -> None:
    assert normalise_name("Cœuvres-et-Valsery") == "coeuvres et valsery"


def test_a_corrupt_reference_file_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "communes.csv"
    bad.write_text(
        "insee,name,departement,postal_codes,population,lat,lon\n"
        "59017,Armentières,59,59280,26998,50.69,2.88\n"
        "59431,Nieppe,59,59850,lots,50.70,2.83\n",
        encoding="utf-8",
    )
    with pytest.raises(ReferenceDataError, match=r"communes.csv is corrupt at line 3"):
        read_communes(bad)


def test_a_reference_file_without_its_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "communes.csv"
    bad.write_text("code,nom\n59017,Armentières\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="lacks the columns"):
        read_communes(bad)


def test_every_commune_has_a_contour_containing_its_point() -> None:
    contours = commune_contours()
    assert set(contours) == set(gazetteer().by_insee)
    armentieres = gazetteer().by_insee["59017"]
    assert TerritoryShape(["59017"]).contains(armentieres.lat, armentieres.lon)


def test_territory_shape_is_the_union_of_its_communes() -> None:
    shape = TerritoryShape(["59017", "59431"])
    nieppe = gazetteer().by_insee["59431"]
    lille = gazetteer().by_insee["59350"]
    assert shape.contains(nieppe.lat, nieppe.lon)
    assert not shape.contains(lille.lat, lille.lon)
    assert shape.outline_geojson()["type"] in ("Polygon", "MultiPolygon")


def test_unknown_codes_have_no_shape() -> None:
    with pytest.raises(ValueError, match="75056"):
        TerritoryShape(["59017", "75056"])

"""The dataset card's licence (assets/release/card.py) for every mix of seed licences: one Hub id, a list of Hub ids,
or `other` with an id for license_name and LICENSES.md as license_link — each a card the Hub's rules accept."""

import polars as pl
import pytest
from huggingface_hub import DatasetCard, DatasetCardData

from assets.release.card import (
    LICENSES_FILE,
    MIXED_LICENSE_NAME,
    CardStats,
    hub_license,
    license_slug,
    license_sources,
    licenses_markdown,
)
from resources.hub_validate import license_problems


@pytest.mark.parametrize("licenses, expected", [
    (["MIT"], {"license": "mit"}),
    (["MIT", "mit"], {"license": "mit"}),
    (["Apache-2.0", "MIT"], {"license": ["apache-2.0", "mit"]}),
    (["GPL-3.0-only"], {"license": "gpl-3.0"}),
    ([None], {"license": "unknown"}),
    (["MIT", None], {"license": ["mit", "unknown"]}),
    ([], {"license": "unknown"}),
    (["PSF-2.0"], {"license": "other", "license_name": "psf-2.0", "license_link": LICENSES_FILE}),
    (["PSF-2.0", "MIT"], {"license": "other", "license_name": MIXED_LICENSE_NAME, "license_link": LICENSES_FILE}),
    (["0BSD", "LicenseRef-Custom Thing"], {"license": "other", "license_name": MIXED_LICENSE_NAME,
                                           "license_link": LICENSES_FILE}),
])
def test_hub_license(tmp_path, licenses, expected):
    meta = hub_license(licenses)
    assert meta == expected
    (tmp_path / LICENSES_FILE).write_text("# Seed licences\n")
    # Through huggingface_hub's card and back, the Hub's rules hold (never a comma-joined name).
    card = DatasetCard(f"---\n{DatasetCardData(**meta).to_yaml()}\n---\n# x\n")
    assert license_problems(card.data.to_dict(), tmp_path) == []


@pytest.mark.parametrize("name, slug", [("PSF-2.0", "psf-2.0"), ("LicenseRef-Custom Thing", "licenseref-custom-thing"),
                                        ("GPL-2.0+", "gpl-2.0"), ("  ", "seed-license"), ("a.-b", "a-b")])
def test_license_slug(name, slug):
    assert license_slug(name) == slug


def test_licenses_markdown_lists_each_licence_with_its_rows_and_sources():
    table = pl.DataFrame({"license": ["PSF-2.0", "PSF-2.0", "MIT", None, "PSF-2.0"],
                          "source": ["stdlib", "stdlib", "mylib", "mylib", "other"]})
    sources = license_sources(table)
    assert sources == {"PSF-2.0": {"stdlib": 2, "other": 1}, "MIT": {"mylib": 1}, "unknown": {"mylib": 1}}
    stats = CardStats(rows={}, problems={}, turns={}, passed_turn={}, pass_rate_by_turn=[], attempted=0, sources={},
                      licenses={"PSF-2.0": 3, "MIT": 1, "unknown": 1}, models={}, feedback_modes={},
                      tests_sources={}, tokens={}, fingerprints=[], configs={}, funnel={}, contamination=[],
                      version="v", license_sources=sources)
    text = licenses_markdown(stats)
    assert "| `PSF-2.0` | no (`other`) | 3 | stdlib (2), other (1) |" in text
    assert "| `MIT` | yes | 1 | mylib (1) |" in text and "| `unknown` | yes | 1 | mylib (1) |" in text
    assert f"`license_name: {MIXED_LICENSE_NAME}`" in text

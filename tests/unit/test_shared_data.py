"""Tests that need the shared data (`<repo>/../shared/data`) say which file is missing, what it is and where it
is expected, instead of failing on a file-not-found deep inside a loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA_ENV, shared_data_file


def test_a_missing_file_fails_with_its_name_origin_and_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failure:
        shared_data_file("icecube_coordinate_test_vectors.csv")
    message = str(failure.value)
    assert (
        f"shared test data missing: {tmp_path / 'icecube_coordinate_test_vectors.csv'}" in message
    )
    assert "arXiv:2101.09836" in message  # where the file comes from
    assert "<repo>/../shared/data" in message and SHARED_DATA_ENV in message  # where it belongs


def test_a_present_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert shared_data_file("x.csv") == tmp_path / "x.csv"


def test_the_default_place_is_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    repo = Path(__file__).resolve().parents[2]
    expected = repo.parent / "shared" / "data" / "icecube_coordinate_test_vectors.csv"
    if expected.is_file():
        assert shared_data_file("icecube_coordinate_test_vectors.csv") == expected
    else:
        with pytest.raises(pytest.fail.Exception, match="shared test data missing"):
            shared_data_file("icecube_coordinate_test_vectors.csv")

"""safe_name and unique_names."""

from __future__ import annotations

import pytest

from convscope.data import safe_name, unique_names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("digit7", "digit7"),
        ("img.npy[3]", "img.npy[3]"),
        ("my digit (1)", "my_digit_1_"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        ("..secret", "secret"),
        ("--help", "help"),
        ("", "input"),
        ("...", "input"),
        ("ünïcode", "_n_code"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("x" * 300, "x" * 120),
    ],
)
def test_safe_name(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_unique_names_suffixes_later_duplicates() -> None:
    assert unique_names(["a", "b", "a", "a"]) == ("a", "b", "a_2", "a_3")


def test_unique_names_never_takes_an_existing_name() -> None:
    assert unique_names(["a", "a", "a_2"]) == ("a", "a_3", "a_2")
    out = unique_names(["x", "x_2", "x", "x_2"])
    assert len(set(out)) == 4 and out[:2] == ("x", "x_2")

"""Dimensions of similarity: each rule against hand-computed matrices, missing values, several
columns, and a collection that declares its dimensions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import (RULES, Dimension, dimension_values, parse_key,
                                        similarity_matrices, similarity_matrix)
from mirsim.errors import DataError, MirsimError, UnknownNameError


def ints(matrix: np.ndarray) -> list[list[int]]:
    assert matrix.dtype == bool and (matrix == matrix.T).all()
    return matrix.astype(int).tolist()


def test_same_label_is_equality_and_missing_values_match_nothing():
    values = ["rock", " rock ", "Rock", None, float("nan"), "", "jazz", "jazz"]
    assert ints(similarity_matrix(values, "same-label")) == [
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],   # None
        [0, 0, 0, 0, 0, 0, 0, 0],   # NaN
        [0, 0, 0, 0, 0, 0, 0, 0],   # empty string
        [0, 0, 0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 1, 1]]


def test_same_label_compares_numbers_too():
    assert ints(similarity_matrix(np.array([1970, 1980, 1970]), "same-label")) == [
        [1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_shared_tag_needs_one_common_tag():
    values = ["rock|pop", "pop", "jazz|Blues", "blues | soul", "", ["soul"], "metal"]
    # rock|pop ~ pop; jazz|blues ~ blues|soul ~ [soul]; blues|soul ~ soul; jazz|blues !~ soul
    assert ints(similarity_matrix(values, "shared-tag")) == [
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1]]


def test_tempo_within_tolerance_or_whole_octaves_apart():
    # 100~104 (4 BPM); 100~52 (|100 - 104| = 4); 100 !~ 212 (|212 - 200| = 12, |100 - 106| = 6);
    # 100~398 (|398 - 400| = 2); 104~52 (an exact octave); 104~212 (|212 - 208| = 4);
    # 212 !~ 398 (|398 - 424| = 26, |212 - 199| = 13); 398~26.5 (|398/16 - 26.5| = 1.625)
    values = [100, 104, 52, 212, 398, 26.5, None]
    assert ints(similarity_matrix(values, "tempo")) == [
        [1, 1, 1, 0, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 0, 1, 0],
        [1, 1, 1, 0, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0]]


def test_tempo_is_symmetric_and_its_tolerance_a_parameter():
    # |50 - 108/2| = 4 but |108 - 2*50| = 8: alike, in one direction suffices
    assert similarity_matrix([50, 108], "tempo")[0, 1]
    tight = Dimension("tempo", "tempo", options={"tolerance": 1.0})
    # 120 !~ 123; 120~61 (|120 - 122| = 2, but |61 - 60| = 1); 121~61 and 123~61 (1 BPM off 122)
    assert ints(similarity_matrix([120, 121, 123, 61], tight)) == [
        [1, 1, 0, 1], [1, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]]


@pytest.mark.parametrize("bad", ["fast", -120, 0, float("inf")])
def test_a_tempo_that_is_not_a_positive_number_is_an_error(bad):
    with pytest.raises(DataError, match="tempo"):
        similarity_matrix([120, bad], "tempo")


@pytest.mark.parametrize("spelling, expected", [
    ("C major", (0, "major")), ("C", (0, "major")), ("CM", (0, "major")), ("c maj", (0, "major")),
    ("A minor", (9, "minor")), ("Am", (9, "minor")), ("a min", (9, "minor")),
    ("A:min", (9, "minor")), ("F# minor", (6, "minor")), ("Gb minor", (6, "minor")),
    ("F♯ major", (6, "major")), ("G♭", (6, "major")), ("F sharp minor", (6, "minor")),
    ("B flat major", (10, "major")), ("Bbm", (10, "minor")), ("bb minor", (10, "minor")),
    ("E# major", (5, "major")), ("Cb", (11, "major")), ("  D  Minor ", (2, "minor")),
])
def test_key_spellings(spelling, expected):
    assert parse_key(spelling) == expected


@pytest.mark.parametrize("bad", ["H major", "C dorian", "major", "C# m minor", "12"])
def test_unreadable_keys_are_one_line_errors(bad):
    with pytest.raises(DataError, match="cannot read key") as info:
        parse_key(bad)
    assert "\n" not in str(info.value)


def test_keys_alike_when_equal_or_parallel():
    values = ["C major", "C minor", "A minor", "G major", "F# minor", "Gb major", "a", None]
    assert ints(similarity_matrix(values, "key")) == [
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 1, 0],   # A minor and A (major): parallel; not relative C major
        [0, 0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],   # F# minor and Gb major: enharmonic tonic, parallel
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 0]]


def test_dimensions_reading_several_columns():
    items = pd.DataFrame({"tonic": ["C", "C", "D", None], "mode": ["major", "minor", "minor", "x"],
                          "genre1": ["rock", None, "pop", None], "genre2": [None, "pop", "", None]})
    key = Dimension("key", "key", columns=("tonic", "mode"))
    tags = Dimension("genres", "shared-tag", columns=("genre1", "genre2"))
    both = Dimension("pair", "same-label", columns=("tonic", "mode"))
    assert dimension_values(items, key) == ["C major", "C minor", "D minor", None]
    assert dimension_values(items, tags) == ["rock", "pop", "pop", None]
    S = similarity_matrices(items, [key, tags, both])
    assert list(S) == ["key", "genres", "pair"]
    assert ints(S["key"]) == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert ints(S["genres"]) == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert ints(S["pair"]) == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    with pytest.raises(DataError, match="exactly one column"):
        similarity_matrices(items, [Dimension("t", "tempo", columns=("tonic", "mode"))])


def test_similarity_matrices_errors_name_the_dimension():
    items = pd.DataFrame({"genre": ["a", "b"], "bpm": ["120", "slow"]})
    with pytest.raises(DataError, match="reads column"):
        similarity_matrices(items, [Dimension("mood")])
    with pytest.raises(DataError, match="unique: genre"):
        similarity_matrices(items, [Dimension("genre"), Dimension("genre", "shared-tag")])
    with pytest.raises(DataError, match="dimension 'bpm': cannot read tempo 'slow'"):
        similarity_matrices(items, [Dimension("bpm", "tempo")])


def test_dimension_declaration_errors():
    with pytest.raises(UnknownNameError, match="unknown similarity rule 'same-lable'"):
        Dimension("genre", "same-lable")
    with pytest.raises(UnknownNameError, match="option of rule key"):
        Dimension("key", "key", options={"tolerance": 2})
    with pytest.raises(DataError, match="NAME=RULE"):
        Dimension.parse("genre")
    assert Dimension.parse(" bpm = tempo ") == Dimension("bpm", "tempo")
    assert set(RULES) == {"same-label", "shared-tag", "tempo", "key"}


def test_a_collection_declares_its_dimensions():
    items = pd.DataFrame({"id": list("abc"), "label": list("xxy"), "group": list("abc"),
                          "genre": ["rock", "rock", "jazz"], "tempo": [120, 60, 90]})
    plain = Collection("toy", items, [None] * 3)
    assert plain.dimensions == []
    dims = [Dimension("genre"), Dimension("tempo", "tempo")]
    c = Collection("toy", items, [None] * 3, dimensions=dims)
    S = similarity_matrices(c.items, c.dimensions)
    assert ints(S["genre"]) == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert ints(S["tempo"]) == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    sub = c.subset([2, 0])
    assert sub.dimensions == dims
    assert ints(similarity_matrices(sub.items, sub.dimensions)["genre"]) == [[1, 0], [0, 1]]
    with pytest.raises(MirsimError, match="reads column"):
        Collection("toy", items, [None] * 3, dimensions=[Dimension("key", "key")])

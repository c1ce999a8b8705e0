"""A test's answers as the judgment files that ``--judgments`` reads
(:func:`mirsim.experiments.judgments.load_judgments`):

* free sorting → ``listener_groupings.csv`` (``listener,fname,cluster``; cluster = the
  listener's group number, from 1);
* triplets → ``triplets.csv`` (``anchor,positive,negative,weight``; positive = the sound the
  listener chose, weight = confidence / :data:`MAX_CONFIDENCE`);
* pairwise → ``pairwise.csv`` (``listener,a,b,similarity``, similarity in [0, 1]).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mirsim.artefacts.files import write_text_atomic
from mirsim.listening.design import ListeningTest, load_test
from mirsim.listening.store import ANSWERS_FILE, AnswerStore

__all__ = ["MAX_CONFIDENCE", "export_answers", "grouping_rows", "pairwise_rows",
           "triplet_rows"]

#: Confidence levels of a triplet answer: 1 (a guess) to 3 (sure).
MAX_CONFIDENCE = 3
_FILES = {"free-sorting": "listener_groupings.csv", "triplets": "triplets.csv",
          "pairwise": "pairwise.csv"}
_HEADERS = {"free-sorting": ["listener", "fname", "cluster"],
            "triplets": ["anchor", "positive", "negative", "weight"],
            "pairwise": ["listener", "a", "b", "similarity"]}


def grouping_rows(test: ListeningTest, answers: list[dict]) -> list[list]:
    """``[listener, fname, cluster]`` rows of free-sorting answers.

    Examples
    --------
    >>> t = ListeningTest("free-sorting", [{"id": i, "name": n, "path": ""}
    ...                                    for i, n in enumerate("abc")], [], ["L1"])
    >>> grouping_rows(t, [{"listener": "L1", "answer": {"groups": [[2], [0, 1]]}}])
    [['L1', 'c', 1], ['L1', 'a', 2], ['L1', 'b', 2]]
    """
    return [[a["listener"], test.name_of(item), number]
            for a in answers
            for number, group in enumerate(a["answer"]["groups"], start=1) for item in group]


def triplet_rows(test: ListeningTest, answers: list[dict]) -> list[list]:
    """``[anchor, positive, negative, weight]`` rows of triplet answers.

    Examples
    --------
    >>> t = ListeningTest("triplets", [{"id": i, "name": n, "path": ""}
    ...                                for i, n in enumerate("abc")], [{"a": 0, "b": 1, "c": 2}],
    ...                   ["L1"])
    >>> triplet_rows(t, [{"listener": "L1", "trial": 0,
    ...                   "answer": {"choice": "c", "confidence": 3}}])
    [['a', 'c', 'b', 1.0]]
    """
    rows = []
    for a in answers:
        trial, answer = test.trials[a["trial"]], a["answer"]
        chosen, other = ("b", "c") if answer["choice"] == "b" else ("c", "b")
        rows.append([test.name_of(trial["a"]), test.name_of(trial[chosen]),
                     test.name_of(trial[other]),
                     round(int(answer["confidence"]) / MAX_CONFIDENCE, 6)])
    return rows


def pairwise_rows(test: ListeningTest, answers: list[dict]) -> list[list]:
    """``[listener, a, b, similarity]`` rows of pairwise answers."""
    return [[a["listener"], test.name_of(test.trials[a["trial"]]["a"]),
             test.name_of(test.trials[a["trial"]]["b"]), float(a["answer"]["similarity"])]
            for a in answers]


_ROWS = {"free-sorting": grouping_rows, "triplets": triplet_rows, "pairwise": pairwise_rows}


def export_answers(test_dir: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the answers of the test in ``test_dir`` as its judgment CSV into ``out``
    (default: ``test_dir``); returns the file and its number of rows.

    Examples
    --------
    >>> import tempfile
    >>> from mirsim.listening.design import design_test, write_test
    >>> d = write_test(design_test("triplets", list("abcd"), list("abcd"), n=2, listeners=["x"]),
    ...                Path(tempfile.mkdtemp()) / "t")
    >>> with AnswerStore(d / ANSWERS_FILE) as s:
    ...     s.add_answer("x", 1, {"choice": "b", "confidence": 3})
    >>> path, n = export_answers(d)
    >>> path.name, n, path.read_text().splitlines()[0]
    ('triplets.csv', 1, 'anchor,positive,negative,weight')
    """
    test_dir = Path(test_dir)
    test = load_test(test_dir)
    with AnswerStore(test_dir / ANSWERS_FILE) as store:
        rows = _ROWS[test.kind](test, store.answers())
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_HEADERS[test.kind])
    writer.writerows(rows)
    path = Path(out or test_dir) / _FILES[test.kind]
    write_text_atomic(path, buffer.getvalue())
    return path, len(rows)

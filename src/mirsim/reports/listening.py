"""The report page of a listening test (``mirsim report TEST_DIR``): what its listeners said
and how far they agree (:mod:`mirsim.listening.analysis`).

Sections, by the kind of test:

* every kind: what the test is (kind, sounds, trials, listeners, answers);
* triplets: the share of equal choices of every two listeners (heat map; mean ± sd over the
  pairs who shared trials; Krippendorff's alpha), the human reference (each listener's
  choices predicted by the majority of the others), true rates with 95 % Wilson intervals per
  condition (where trials have an expected item), the confidence levels given;
* free sorting: the adjusted Rand index of every two listeners (heat map, mean ± sd), each
  listener against the consensus of the others, the number of groups per listener (histogram);
* pairwise: the Spearman correlation of every two listeners' ratings on the pairs both rated
  (heat map, mean ± sd), each pair's mean rating.

Everything is read from the test directory (``test.json``, ``answers.sqlite``); the plots are
embedded in the page and written beside it as ``<page name>-<plot>.png``, every file atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mirsim.artefacts.files import write_bytes_atomic, write_text_atomic
from mirsim.listening import analysis as A
from mirsim.listening.design import TEST_FILE, ListeningTest, load_test
from mirsim.listening.export import MAX_CONFIDENCE
from mirsim.listening.store import ANSWERS_FILE, AnswerStore
from mirsim.reports import html
from mirsim.reports.errors import ReportError
from mirsim.reports.metrics import ListenerSeries, format_mean_std
from mirsim.reports.plots import MAX_NAMED_LABELS, figure_png, listener_figure

__all__ = ["PLOTS", "build_listening_page", "matrix_figure",
           "true_rate_figure", "count_figure"]

#: The plots a page may have, each written as ``<page name>-<plot>.png``.
PLOTS = ("agreement", "reference", "true-rates", "rand", "groups", "correlations")
#: Lower end of the colour scale of the adjusted Rand index (below 0: worse than chance).
RAND_SCALE_LOW = -0.2


def build_listening_page(test_dir: str | Path, out: Path) -> tuple[list[Path], list[str]]:
    """Write the page ``out`` of the listening test in ``test_dir`` and its PNGs beside it;
    returns the PNGs and the notes (sections left out, and why).

    Raises
    ------
    ReportError
        The test has no answers yet.
    mirsim.errors.MirsimError
        Not a readable test, or no answer database.
    """
    test_dir = Path(test_dir)
    test = load_test(test_dir)
    with AnswerStore(test_dir / ANSWERS_FILE) as store:
        answers = store.answers()
    if not answers:
        raise ReportError(f"{test_dir}: no answers yet (serve it with `mirsim listen serve "
                          f"{test_dir}`)")
    images: dict[str, bytes] = {}
    notes: list[str] = []
    sections = _SECTIONS[test.kind](test, answers, images, notes)
    body = [f"<h1>mirsim report · listening test {html.esc(test_dir.name)}</h1>",
            _facts(test, answers), *sections,
            html.paragraph(f"Written by mirsim {_version()} from {test_dir.name}/{TEST_FILE} "
                           f"and {ANSWERS_FILE}. The plots are also saved as PNG files beside "
                           f"this page.", "muted")]
    written = _write_images(out, images)
    write_text_atomic(out, html.page(f"mirsim report · {test_dir.name}", body))
    return written, notes


def _version() -> str:
    import mirsim

    return mirsim.__version__


def _write_images(out: Path, images: dict[str, bytes]) -> list[Path]:
    """The PNGs beside ``out``; one an earlier page had and this one has not is removed."""
    written = []
    for name in PLOTS:
        path = out.parent / f"{out.stem}-{name}.png"
        if name in images:
            written.append(write_bytes_atomic(path, images[name]))
        else:
            path.unlink(missing_ok=True)
    return written


def _figure(images: dict[str, bytes], key: str, fig: Figure, alt: str, caption: str) -> str:
    images[key] = figure_png(fig)
    return html.figure(images[key], alt, caption)


def _facts(test: ListeningTest, answers: Sequence[dict[str, Any]]) -> str:
    answered = sorted({a["listener"] for a in answers}, key=test.listeners.index)
    conditions = list(dict.fromkeys(A.trial_conditions(test)))
    return html.facts([
        ("kind", test.kind), ("sounds", len(test.items)), ("trials", len(test.trials)),
        ("selection", test.selection), ("source", test.source or None),
        ("conditions", ", ".join(conditions) if conditions != ["all"] else None),
        ("listeners", f"{len(answered)} of {len(test.listeners)} have answered "
                      f"({', '.join(answered)})"),
        ("answers", len(answers))])


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _mean_sd(matrix: np.ndarray) -> str:
    mean, sd, n = A.upper_mean_std(matrix)
    return (f"{format_mean_std(mean, sd)} over {n} pair(s) of listeners" if n else
            "no two listeners to compare")


# -- plots ------------------------------------------------------------------------------------
def matrix_figure(matrix: np.ndarray, names: Sequence[str], label: str,
                  low: float = 0.0, high: float = 1.0, title: str = "") -> Figure:
    """Heat map of a listeners × listeners matrix, each cell written in it (NaN: grey, no
    number), names on the axes when there are few enough.

    Examples
    --------
    >>> fig = matrix_figure(np.array([[1.0, 0.5], [0.5, 1.0]]), ["ann", "bob"], "share")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()], len(fig.axes[0].texts)
    (['ann', 'bob'], 4)
    """
    from matplotlib import colormaps

    M = np.asarray(matrix, dtype=np.float64)
    n = len(M)
    side = min(9.0, 2.5 + 0.45 * n)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, vmin=low, vmax=high)
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    if n <= MAX_NAMED_LABELS:
        ax.set_xticks(range(n), names, fontsize=8, rotation=90)
        ax.set_yticks(range(n), names, fontsize=8)
        for (i, j), v in np.ndenumerate(M):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (low + high) / 2 else "black")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig


def true_rate_figure(rates: dict[str, A.TrueRate], title: str = "") -> Figure:
    """Each condition's true rate as a point with its confidence interval as an error bar;
    dotted line: chance (0.5).

    Examples
    --------
    >>> fig = true_rate_figure({"drums": A.true_rate(7, 8), "bass": A.true_rate(3, 8)})
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['drums', 'bass']
    """
    names = list(rates)
    r = np.array([rates[c].rate for c in names])
    low = r - np.array([rates[c].low for c in names])
    high = np.array([rates[c].high for c in names]) - r
    fig = Figure(figsize=(max(4.0, 1.5 + 0.7 * len(names)), 4))
    ax = fig.add_subplot()
    ax.errorbar(np.arange(len(names)), r, yerr=[low, high], fmt="o", capsize=4)
    ax.set_xticks(np.arange(len(names)), names, rotation=90 if len(names) > 8 else 0)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="0.3", linewidth=0.6, linestyle=":")
    ax.set_ylabel("true rate (95 % Wilson interval)")
    ax.set_title(title, fontsize=10)
    return fig


def count_figure(counts: Sequence[int], xlabel: str, ylabel: str, title: str = "") -> Figure:
    """Histogram of small whole numbers (e.g. groups per listener), one bar per value.

    Examples
    --------
    >>> fig = count_figure([3, 3, 5], "groups", "listeners")
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [2.0, 0.0, 1.0]
    """
    values = np.asarray(counts, dtype=int)
    bins = np.arange(values.min(), values.max() + 1)
    fig = Figure(figsize=(max(4.0, 1.5 + 0.35 * len(bins)), 3.5))
    ax = fig.add_subplot()
    ax.bar(bins, [float(np.sum(values == b)) for b in bins], width=0.8)
    ax.set_xticks(bins)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=10)
    return fig


# -- triplets ---------------------------------------------------------------------------------
def _triplet_sections(test: ListeningTest, answers: Sequence[dict[str, Any]],
                      images: dict[str, bytes], notes: list[str]) -> list[str]:
    choices, confidence = A.triplet_choices(test, answers)
    return [_agreement_section(test, choices, images),
            _reference_section(test, choices, images),
            _true_rate_section(test, choices, images, notes),
            _confidence_section(test, choices, confidence)]


def _agreement_section(test: ListeningTest, choices: np.ndarray,
                       images: dict[str, bytes]) -> str:
    pairs = A.pair_agreement(choices)
    share = np.where(np.eye(len(choices), dtype=bool), np.nan, pairs.share)
    alpha = A.krippendorff_alpha(choices)
    return html.section("Agreement between listeners", "agreement", [
        html.paragraph(f"For every two listeners, the share of the trials both answered on "
                       f"which they chose the same sound: {_mean_sd(share)}. Krippendorff's "
                       f"alpha (chance-corrected, 1 = perfect, 0 = chance) over the trials at "
                       f"least two listeners answered: {_number(alpha)}."),
        _figure(images, "agreement", matrix_figure(share, test.listeners, "share of equal "
                                                   "choices"),
                "heat map of the share of equal choices of every two listeners",
                "Row and column: a listener; grey: no trial in common.")])


def _reference_section(test: ListeningTest, choices: np.ndarray,
                       images: dict[str, bytes]) -> str:
    reference = A.majority_reference(choices)
    values = reference.per_listener
    rows = [[name, int(n), _number(v)] for name, n, v in
            zip(test.listeners, reference.counts, values)]
    scored = np.isfinite(values).any()
    summary = (f"{format_mean_std(reference.mean, reference.std)} over listeners (mean ± sd)"
               if scored else "not defined, no trial was answered by two listeners")
    parts = [html.paragraph(f"Each listener's choices predicted by the majority of the other "
                            f"listeners on the same trial (a tie counts one half; trials no "
                            f"other listener answered are not scored): {summary}. A model's "
                            f"triplet agreement near this is as good as another listener."),
             html.table(["listener", "trials scored", "agreement with the others"], rows,
                        [False, True, True])]
    if scored:
        series = ListenerSeries("", list(test.listeners), [],
                                [float(v) if np.isfinite(v) else None for v in values])
        parts.append(_figure(images, "reference", listener_figure(series),
                             "bar chart of the human reference per listener",
                             "Grey: each listener predicted from the others; dotted line: "
                             "chance (0.5)."))
    return html.section("Human reference", "reference", parts)


def _true_rate_section(test: ListeningTest, choices: np.ndarray, images: dict[str, bytes],
                       notes: list[str]) -> str:
    expected = A.expected_choices(test)
    listener, trial = np.nonzero((choices != A.MISSING) & (expected != A.MISSING)[None, :])
    if not len(trial):
        why = ("no trial has an expected sound (a 'positive' field, as per-instrument "
               "listening sets have; random triplets have none)")
        notes.append(f"true rates left out: {why}")
        return html.section("True rates", "true-rates", [html.note(f"No true rates: {why}.")])
    conditions = np.asarray(A.trial_conditions(test))[trial]
    rates = A.condition_true_rates(choices[listener, trial] == expected[trial], conditions)
    rows = [[c, r.n, _number(r.rate), f"{r.low:.3f} – {r.high:.3f}"] for c, r in rates.items()]
    return html.section("True rates", "true-rates", [
        html.paragraph("The share of answers that chose the trial's expected sound, per "
                       "condition, with Wilson's 95 % interval (every listener's answers "
                       "pooled)."),
        html.table(["condition", "answers", "true rate", "95 % interval"], rows,
                   [False, True, True, True]),
        _figure(images, "true-rates", true_rate_figure(rates),
                "true rate per condition with confidence intervals",
                "Points: true rates; bars: 95 % Wilson intervals; dotted line: chance.")])


def _confidence_section(test: ListeningTest, choices: np.ndarray,
                        confidence: np.ndarray) -> str:
    counts = A.confidence_counts(confidence, MAX_CONFIDENCE)
    levels = np.arange(1, MAX_CONFIDENCE + 1)
    answered = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts * levels).sum(axis=1) / answered
    rows = [[name, *c.tolist(), _number(m, 2)]
            for name, c, m, n in zip(test.listeners, counts, mean, answered) if n]
    total = counts.sum(axis=0)
    rows.append(["all", *total.tolist(), _number(float((total * levels).sum() / total.sum()),
                                                 2)])
    return html.section("Confidence", "confidence", [
        html.paragraph(f"How sure the listeners said they were, from 1 (a guess) to "
                       f"{MAX_CONFIDENCE} (sure): answers per level and the mean level."),
        html.table(["listener", *(f"level {k}" for k in levels), "mean"], rows,
                   [False, *([True] * (MAX_CONFIDENCE + 1))])])


# -- free sorting -----------------------------------------------------------------------------
def _sorting_sections(test: ListeningTest, answers: Sequence[dict[str, Any]],
                      images: dict[str, bytes], notes: list[str]) -> list[str]:
    names, groups = A.sorting_groups(test, answers)
    counts = A.groups_per_listener(groups)
    groups_part = [
        html.table(["listener", "groups"], [[n, int(c)] for n, c in zip(names, counts)],
                   [False, True]),
        _figure(images, "groups", count_figure(counts, "groups made", "listeners"),
                "histogram of the number of groups per listener",
                "How many listeners made each number of groups.")]
    if len(names) < 2:
        why = "one listener has answered: nothing to compare"
        notes.append(f"agreement between listeners left out: {why}")
        return [html.section("Agreement between listeners", "rand", [html.note(why + ".")]),
                html.section("Groups per listener", "groups", groups_part)]
    rand = A.rand_matrix(groups)
    off = np.where(np.eye(len(rand), dtype=bool), np.nan, rand)
    loo = A.leave_one_out_rand(groups)
    loo_sd = float(loo.std(ddof=1)) if len(loo) > 1 else 0.0
    return [
        html.section("Agreement between listeners", "rand", [
            html.paragraph(f"Adjusted Rand index of every two listeners' groupings (1: the "
                           f"same partition, 0: chance): {_mean_sd(off)}."),
            _figure(images, "rand", matrix_figure(rand, names, "adjusted Rand index",
                                                  RAND_SCALE_LOW),
                    "heat map of the adjusted Rand index of every two listeners",
                    "Row and column: a listener.")]),
        html.section("Each listener against the others' consensus", "consensus", [
            html.paragraph(f"Each listener's grouping against the consensus of the others (a "
                           f"cluster ensemble, average linkage, cut at the median number of "
                           f"groups of the others): adjusted Rand index "
                           f"{format_mean_std(float(loo.mean()), loo_sd)} over listeners."),
            html.table(["listener", "adjusted Rand index"],
                       [[n, _number(v)] for n, v in zip(names, loo)], [False, True])]),
        html.section("Groups per listener", "groups", groups_part)]


# -- pairwise ---------------------------------------------------------------------------------
def _pairwise_sections(test: ListeningTest, answers: Sequence[dict[str, Any]],
                       images: dict[str, bytes], notes: list[str]) -> list[str]:
    ratings = A.pairwise_ratings(test, answers)
    mean, n = A.mean_ratings(ratings)
    rated = [i for i in np.argsort(-np.nan_to_num(mean, nan=-1.0), kind="stable") if n[i]]
    rows = [[test.name_of(test.trials[i]["a"]), test.name_of(test.trials[i]["b"]), int(n[i]),
             _number(mean[i])] for i in rated]
    mean_part = html.section("Mean rating per pair", "ratings", [
        html.paragraph(f"{len(rated)} of {len(test.trials)} pairs rated, most similar first "
                       f"(0: different, 1: the same)."),
        html.table(["sound A", "sound B", "listeners", "mean rating"], rows,
                   [False, False, True, True])])
    answered = np.isfinite(ratings).any(axis=1)
    if answered.sum() < 2:
        why = "one listener has answered: nothing to compare"
        notes.append(f"correlations between listeners left out: {why}")
        return [html.section("Agreement between listeners", "correlations",
                             [html.note(why + ".")]), mean_part]
    names = [name for name, a in zip(test.listeners, answered) if a]
    rho = A.rating_correlations(ratings[answered])
    off = np.where(np.eye(len(rho), dtype=bool), np.nan, rho)
    return [html.section("Agreement between listeners", "correlations", [
        html.paragraph(f"Spearman correlation of every two listeners' ratings on the pairs "
                       f"both rated (at least {A.MIN_SHARED_RATINGS}): {_mean_sd(off)}."),
        _figure(images, "correlations", matrix_figure(rho, names, "Spearman correlation", -1.0),
                "heat map of the Spearman correlation of every two listeners' ratings",
                "Row and column: a listener; grey: too few pairs in common, or ratings all "
                "equal.")]), mean_part]


_SECTIONS = {"triplets": _triplet_sections, "free-sorting": _sorting_sections,
             "pairwise": _pairwise_sections}

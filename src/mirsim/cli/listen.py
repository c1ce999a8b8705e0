"""``mirsim listen``: listening tests in the browser.

* ``mirsim listen design (--index INDEX | --data DATA) --kind KIND --out TEST_DIR``: a test
  directory (``test.json`` and ``answers.sqlite``; see :mod:`mirsim.listening.design`);
  ``--per-instrument RUN_DIR --instrument X``: the per-instrument paper's listening sets of
  a ``reproduce per-instrument`` run (:mod:`mirsim.listening.per_instrument`).
* ``mirsim listen serve TEST_DIR``: the test's web page; prints one link per listener.
* ``mirsim listen export TEST_DIR``: the answers as a judgments CSV (``--judgments``).
* ``mirsim listen consensus --judgments FILE --clusters N``: a consensus partition of the
  listeners' groupings (:func:`mirsim.listening.analysis.consensus_partition`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mirsim.cli.common import err, fail_cleanly, out
from mirsim.errors import MirsimError

listen_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Listening tests in the browser: design, serve, export.")


@listen_app.command("design")
@fail_cleanly
def design(
    out_dir: Path = typer.Option(..., "--out", help="Test directory to create."),
    kind: Optional[str] = typer.Option(None, help="free-sorting, triplets or pairwise "
                                                  "(--per-instrument: triplets)."),
    index: Optional[Path] = typer.Option(None, help="Index directory whose sounds to test."),
    data: Optional[str] = typer.Option(None, help="Or: data set name, folder or CSV manifest."),
    n: Optional[int] = typer.Option(None, help="Trials (triplets, pairwise; default 50), or "
                                               "sounds drawn for free sorting (default all)."),
    seed: int = typer.Option(0, help="Seed of every random draw."),
    listeners: str = typer.Option("L01", help="Listener names, comma-separated."),
    active: bool = typer.Option(False, help="Triplets the index's model is least sure about "
                                            "(smallest |d(a,b) - d(a,c)|; needs --index)."),
    contrast_index: Optional[Path] = typer.Option(
        None, help="Triplets that set two metrics against each other (the per-instrument "
                   "paper's listening sets): the positive among the 2 nearest by --index's "
                   "metric, the negative among the 2 nearest by this index's (the same "
                   "library, another metric, e.g. the mix's); overlapping anchors skipped."),
    per_instrument: Optional[Path] = typer.Option(
        None, "--per-instrument", help="Or: a `mirsim reproduce per-instrument` run directory "
                                       "(--data multitrack or soundtracks): the paper's "
                                       "listening sets of --instrument over its test songs, "
                                       "10 s clips of their mixes."),
    instrument: Optional[str] = typer.Option(None, help="With --per-instrument: the "
                                                        "condition whose metric gives the "
                                                        "positive, e.g. drums or "
                                                        "separated-drums (the mix's gives "
                                                        "the negative)."),
    sets: int = typer.Option(8, min=1, help="With --per-instrument: valid sets wanted (fewer "
                                            "when fewer anchors are valid)."),
) -> None:
    """Design a listening test over the sounds of an index or a data set, or the
    per-instrument paper's listening sets of a run."""
    from mirsim.listening.design import (design_test, sounds_of_data, sounds_of_index,
                                         write_test)

    if per_instrument is not None:
        _per_instrument_design(per_instrument, instrument, kind, sets, seed, listeners,
                               out_dir, other=index or data or n or active or contrast_index)
        return
    if instrument is not None:
        raise MirsimError("--instrument goes with --per-instrument RUN_DIR")
    if kind is None:
        raise MirsimError("--kind is needed (free-sorting, triplets or pairwise)")
    if (index is None) == (data is None):
        raise MirsimError("give one of --index and --data (or --per-instrument)")
    if active and (index is None or kind != "triplets"):
        raise MirsimError("--active chooses triplets from an index's embeddings: needs "
                          "--kind triplets and --index")
    if contrast_index is not None and (index is None or kind != "triplets" or active):
        raise MirsimError("--contrast-index sets two indexes' metrics against each other: "
                          "needs --kind triplets and --index, and not --active")
    sounds = sounds_of_index(index) if index is not None else sounds_of_data(data)
    contrast = None
    if contrast_index is not None:
        other = sounds_of_index(contrast_index)
        if other["names"] != sounds["names"]:
            raise MirsimError(f"{contrast_index} indexes another library than {index} (the "
                              f"same files in the same rows are needed)")
        contrast = other["embeddings"]
    test = design_test(kind, sounds["names"], sounds["paths"], n=n, seed=seed,
                       listeners=listeners.split(","),
                       embeddings=sounds["embeddings"] if active or contrast is not None
                       else None,
                       distance=sounds["distance"], source=sounds["source"], contrast=contrast)
    write_test(test, out_dir)
    out.print(f"{out_dir}: {test.kind} test, {len(test.items)} sounds, {len(test.trials)} "
              f"trial(s), listeners {', '.join(test.listeners)} (`mirsim listen serve "
              f"{out_dir}`)", highlight=False, soft_wrap=True)


def _per_instrument_design(run_dir: Path, instrument: Optional[str], kind: Optional[str],
                           sets: int, seed: int, listeners: str, out_dir: Path,
                           other) -> None:
    from mirsim.listening.per_instrument import export_per_instrument_test

    if other:
        raise MirsimError("--per-instrument designs its own sets: not with --index, --data, "
                          "-n, --active or --contrast-index")
    if kind not in (None, "triplets"):
        raise MirsimError(f"--per-instrument designs triplets, not {kind}")
    if instrument is None:
        raise MirsimError("--per-instrument needs --instrument (e.g. drums)")
    test = export_per_instrument_test(run_dir, instrument, out_dir, n_sets=sets, seed=seed,
                                      listeners=listeners.split(","))
    few = f" (of {sets} asked: no more valid anchors)" if len(test.trials) < sets else ""
    out.print(f"{out_dir}: {instrument} listening sets, {len(test.trials)} trial(s){few}, "
              f"{len(test.items)} clips of {test.extra['clip_seconds']:g} s, listeners "
              f"{', '.join(test.listeners)} (`mirsim listen serve {out_dir}`)",
              highlight=False, soft_wrap=True)


@listen_app.command("export")
@fail_cleanly
def export(
    test_dir: Path = typer.Argument(..., help="Test directory (`mirsim listen design`)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Where to write (default: the "
                                                               "test directory)."),
) -> None:
    """Write a test's answers as the judgments CSV that `--judgments` reads."""
    from mirsim.listening.export import export_answers

    path, rows = export_answers(test_dir, out_dir)
    out.print(f"{path}: {rows} row(s)", highlight=False, soft_wrap=True)


@listen_app.command("consensus")
@fail_cleanly
def consensus(
    judgments: str = typer.Option(..., "--judgments", help="Listener groupings CSV "
                                  "(listener,fname,cluster), e.g. from `mirsim listen "
                                  "export`, or 'cyberlioz'."),
    clusters: int = typer.Option(..., help="Clusters of the consensus."),
    linkage: str = typer.Option("average", help="average, complete or single."),
    compare: Optional[Path] = typer.Option(None, help="A fname,cluster CSV to compare with "
                                                      "(adjusted Rand index)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the consensus as a "
                                                                "fname,cluster CSV."),
) -> None:
    """A consensus partition of several listeners' free sortings (a cluster ensemble: the
    listeners' co-association clustered hierarchically), and how it compares with another
    partition and with each listener's own."""
    from sklearn.metrics import adjusted_rand_score

    from mirsim.artefacts.files import write_text_atomic
    from mirsim.datasets.listeners import ListenerGroupings
    from mirsim.experiments.judgments import load_judgments
    from mirsim.listening.analysis import consensus_partition, read_partition

    groupings = load_judgments(judgments)
    if not isinstance(groupings, ListenerGroupings):
        raise MirsimError(f"{judgments}: a consensus needs listener groupings "
                          f"(listener,fname,cluster), not triplets")
    labels = consensus_partition(groupings.groups, clusters, linkage)
    out.print(f"consensus of {groupings.n_listeners} listeners, {len(labels)} sounds, "
              f"{clusters} clusters ({linkage} linkage)", highlight=False)
    if compare is not None:
        reference = read_partition(compare, groupings.fnames)
        own = [adjusted_rand_score(reference, g) for g in groupings.groups]
        out.print(f"adjusted Rand index against {compare.name}: "
                  f"{adjusted_rand_score(reference, labels):.3f} (each listener's own: "
                  f"{min(own):.3f} to {max(own):.3f})", highlight=False)
    if out_file is not None:
        rows = "".join(f"{f},{c}\n" for f, c in zip(groupings.fnames, labels))
        write_text_atomic(out_file, "fname,cluster\n" + rows)
        out.print(f"{out_file}: {len(labels)} row(s)", highlight=False, soft_wrap=True)


@listen_app.command("serve")
@fail_cleanly
def serve(
    test_dir: Path = typer.Argument(..., help="Test directory (`mirsim listen design`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (anything but a loopback "
                                               "address lets other machines reach the test)."),
    port: int = typer.Option(8766, help="Port (0: any free port)."),
    allowed_host: Optional[list[str]] = typer.Option(
        None, "--allowed-host", help="Also answer requests naming this host (repeatable)."),
) -> None:
    """Serve a listening test; prints one personal link per listener (new links at every
    start: only their hashes are stored, and the previous links stop working)."""
    import uvicorn

    from mirsim.cli.serve import allowed_hosts, bound_url, is_loopback, listening_socket
    from mirsim.listening.app import create_listen_app, issue_links

    hosts = allowed_hosts(host, allowed_host or ())
    with listening_socket(host, port) as sock:
        app = create_listen_app(test_dir, allowed_hosts=hosts)
        base = bound_url(sock).rstrip("/")
        if not is_loopback(host):
            err.print(f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach "
                      f"this machine can open the test (answers need a listener's link)",
                      highlight=False, soft_wrap=True)
        for listener, token in issue_links(test_dir).items():
            typer.echo(f"{listener}\t{base}/t/{token}")
        err.print(f"mirsim: serving the listening test {test_dir} at {base}/ (Ctrl+C stops)",
                  highlight=False, soft_wrap=True)
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])

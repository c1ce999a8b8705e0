"""Listening tests in the browser: design a test, store listeners' answers, export them.

* :mod:`~mirsim.listening.design`: a test directory (``test.json``) of one kind — free sorting,
  triplets, pairwise — over the sounds of an index or a data set, drawn with a seed.
* :mod:`~mirsim.listening.store`: ``answers.sqlite``, one SQLite database per test (WAL), each
  answer committed when it is given.
* :mod:`~mirsim.listening.export`: the answers as the judgments CSVs that ``--judgments`` reads.
* :mod:`~mirsim.listening.app`: the web app that runs a test (``mirsim listen serve``).
* :mod:`~mirsim.listening.analysis`: what the answers say (agreement between listeners, the
  human reference, true rates, consensus partitions); ``mirsim report TEST_DIR`` draws it
  (:mod:`mirsim.reports.listening`).
"""

from mirsim._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ListeningTest": ".design", "design_test": ".design", "load_test": ".design", "write_test": ".design",
    "KINDS": ".design", "AnswerStore": ".store", "export_answers": ".export",
})
__all__ = ["KINDS", "AnswerStore", "ListeningTest", "design_test", "export_answers",
           "load_test", "write_test"]

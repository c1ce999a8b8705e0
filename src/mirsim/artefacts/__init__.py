"""Artefacts: what mirsim leaves on disk, written one way.

:mod:`~mirsim.artefacts.files`  atomic writes and the JSON helpers every module uses;
:mod:`~mirsim.artefacts.runs`   run directories: creating, writing and reading them;
:mod:`~mirsim.artefacts.download`  downloading a file verified against a checksum.
"""

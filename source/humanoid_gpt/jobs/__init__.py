"""End-to-end jobs behind the ``hgpt`` command."""

"""Shared layer of the chimpbridge bundle: Mailchimp clients, secrets, settings, observability,
errors and the use-case logic. Imported as ``chimpbridge`` from /opt/python in Lambda and
from layers/chimpbridge in tests. Kept import-free: cold start is measured."""

__version__ = "0.1.0"

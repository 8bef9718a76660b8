"""Keystone's WSGI application for gunicorn: ``gunicorn --pythonpath deploy/keystone keystone_wsgi:application``.

``keystone.wsgi.api`` hands ``sys.argv`` to oslo.config, which then parses gunicorn's own
command line (``--bind``, ``--workers`` ...) and stops the worker with "unrecognized
arguments". The configuration comes from ``OS_KEYSTONE_CONFIG_DIR`` /
``OS_KEYSTONE_CONFIG_FILES`` instead, so the argument list is cleared before the import.
"""
import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application

__all__ = ["application"]

"""``python -m tests.celery_main worker ...``: the ``celery`` command with the network guard installed first.

The Celery workers the tests start (``tests/workers.py``) run through this, so a connector, the planner or the
preparer making an outbound call inside a transaction in a worker is reported to the test process like one made in
it (``tests/network_guard.py``). The pool processes are forked from this one and inherit the guard.
"""

from celery.__main__ import main

from tests import network_guard

if __name__ == "__main__":
    network_guard.install_from_environment()
    main()

import os

# Settings are read from the environment at import time of the app: set the test shape first.
os.environ.setdefault("PORTAL_ENV", "test")

pytest_plugins = [
    "tests.fixtures.seaweedfs",
    "tests.fixtures.databases",
    "tests.fixtures.factories",
    "tests.fixtures.web",
    "tests.fixtures.brokers",
]


def pytest_configure(config: object) -> None:
    # What the app factory, the worker and the command line do first: every table, handler, job and owner.
    from portal import registry

    registry.install()

"""Root conftest: the real-server fixtures every test suite shares."""

pytest_plugins = ["tests.support.servers"]

"""The pytest session of the release suites, without pytest: options -> runs (reused or run now by the engine)
-> gate checks. The plugin (:mod:`qa.pytest_plugin`) only forwards to :class:`qa.session.suite.SuiteSession`."""

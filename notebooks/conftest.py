"""nbval settings for the course notebooks.

stderr carries progress bars and warnings, which differ from run to run: never compare it.
"""


def pytest_collectstart(collector):
    if hasattr(collector, "skip_compare"):  # nbval's notebook collector
        collector.skip_compare += ("stderr",)

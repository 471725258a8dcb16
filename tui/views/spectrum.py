"""The spectrum view (issue 11): being built; the dashboard says so until then."""


def register(cli) -> None:
    """No headless command yet."""


def screen(app):
    return None

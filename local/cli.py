"""The ``sluice`` command line (placeholder until the CLI lands)."""


def main() -> None:
    """Entry point."""
    raise SystemExit("sluice: not built yet")

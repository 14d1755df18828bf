"""``fedlife-coord``'s entry point (also ``python -m server``)."""

from common.starting import interruptible_start


def main() -> None:
    with interruptible_start("fedlife-coord"):
        from server.cli import main as command
    command()


if __name__ == "__main__":
    main()

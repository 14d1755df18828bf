"""``fedlife-site``'s entry point (also ``python -m client``)."""

from common.starting import interruptible_start


def main() -> None:
    with interruptible_start("fedlife-site"):
        from client.cli import main as command
    command()


if __name__ == "__main__":
    main()

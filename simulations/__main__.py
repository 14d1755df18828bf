"""``fedlife-sim``'s entry point (also ``python -m simulations``)."""

from common.starting import interruptible_start


def main() -> None:
    with interruptible_start("fedlife-sim"):
        from simulations.cli import main as command
    command()


if __name__ == "__main__":
    main()

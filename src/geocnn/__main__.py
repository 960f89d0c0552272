"""``python -m geocnn`` (and ``torchrun -m geocnn``) runs the command line."""

from geocnn.cli import main

if __name__ == "__main__":
    main()

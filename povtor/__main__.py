"""`python -m povtor` runs the command line, like the `povtor` script."""

from povtor.cli import app

if __name__ == "__main__":
    app(prog_name="povtor")

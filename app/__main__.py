"""`python -m app` runs the command line, like the `povtor` script."""

from app.cli import app

if __name__ == "__main__":
    app(prog_name="povtor")

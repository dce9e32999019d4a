"""`python -m deeplens_cli`: the same entry point as the `deeplens-cli` console script.

Useful where the script's folder is not on PATH (pipx-less installs, `python -m venv` without activation, CI images).
"""

from deeplens_cli.cli import main

if __name__ == "__main__":
    main()

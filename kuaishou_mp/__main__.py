"""``python -m kuaishou_mp``: the ``kuaishou-mp`` command line (needs the ``cli`` extra)."""

from kuaishou_mp.cli import main

if __name__ == "__main__":
    main()

"""``pretrain``: train and evaluate encoders on a snapshot. Not built yet."""

from __future__ import annotations

import sys

from corpus.cliutils import entry_point, new_app

app = new_app(
    "pretrain",
    "Train vision encoders on images rendered live from a snapshot (coming: pretrain train, probe).",
)


@app.command("info")
def info_command() -> None:
    """Say what this command will do once pretraining lands.

    Example: pretrain info
    """
    print("pretraining is not built yet: see issue 'Pretraining on a snapshot'")


main = entry_point(app, "pretrain")

if __name__ == "__main__":
    sys.exit(main())

"""``render``: validate, profile and look at programs (headless OpenGL). Not built yet."""

from __future__ import annotations

import sys

from corpus.cliutils import entry_point, new_app

app = new_app(
    "render",
    "Compile, validate, profile and look at shader programs headless (coming: validate, frames, sheet).",
)


@app.command("info")
def info_command() -> None:
    """Say what this command will do once the renderer lands.

    Example: render info
    """
    print("the renderer is not built yet: see issue 'Validator and renderer'")


main = entry_point(app, "render")

if __name__ == "__main__":
    sys.exit(main())

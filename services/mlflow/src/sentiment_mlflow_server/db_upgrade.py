"""`python -m sentiment_mlflow_server.db_upgrade`: `mlflow db upgrade` with the URI from the environment.

`mlflow db upgrade URI` takes the URI (and so the database password) as a command-line argument, which `ps` and
`docker top` show to anyone on the host. This runs the same click command in-process with the URI read from
MLFLOW_BACKEND_STORE_URI, the variable `mlflow server` reads too.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    uri = os.environ.get("MLFLOW_BACKEND_STORE_URI", "").strip()
    if not uri:
        print("error: MLFLOW_BACKEND_STORE_URI is not set", file=sys.stderr)
        return 1
    from mlflow.db import commands

    commands.main(args=["upgrade", uri], prog_name="mlflow db", standalone_mode=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

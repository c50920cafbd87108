"""A throwaway DVC project wired to the repo's dvc.yaml, params.yaml and remote config, pointed at a test MinIO."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from sentiment_local.servers import DVC_BUCKET, Minio

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class DvcProject:
    def __init__(self, root: Path, minio: Minio, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.prefix = f"test-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            **minio.env(),
            **(extra_env or {}),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        root.mkdir(parents=True, exist_ok=True)
        for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
            shutil.copy(REPO / name, root / name)
        (root / "data").mkdir(exist_ok=True)
        shutil.copy(REPO / "data" / ".gitignore", root / "data" / ".gitignore")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        self.run("init", "-q")
        shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
        # Per-machine settings go to the git-ignored config.local, as the README tells users to do.
        self.run("remote", "modify", "--local", "storage", "endpointurl", minio.endpoint)
        self.run("remote", "modify", "--local", "storage", "url", f"s3://{DVC_BUCKET}/{self.prefix}")

    @property
    def data(self) -> Path:
        return self.root / "data" / "reviews.csv.gz"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "dvc"), *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

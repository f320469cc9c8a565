import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.mcp_http import FakeMcpHttpServer

BIN = Path(sys.executable).parent
TIME_SERVER = str(BIN / "mcp-server-time")
GIT_SERVER = str(BIN / "mcp-server-git")
GIT = shutil.which("git") or "git"


def git(repository: Path, *args: str) -> str:
    """Runs git in the repository; its output."""
    return subprocess.run([GIT, "-C", str(repository), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def mcp_http() -> Iterator[FakeMcpHttpServer]:
    server = FakeMcpHttpServer()
    yield server
    server.stop()


@pytest.fixture
def git_repository(tmp_path: Path) -> Path:
    """A repository with one commit and one untracked file."""
    repository = tmp_path / "repo"
    repository.mkdir()

    git(repository, "init", "-q", "-b", "main")
    git(repository, "config", "user.email", "dev@example.com")
    git(repository, "config", "user.name", "Dev")
    (repository / "README.md").write_text("hello\n")
    git(repository, "add", "README.md")
    git(repository, "commit", "-q", "-m", "First commit")
    (repository / "notes.txt").write_text("untracked\n")
    return repository

"""A real Hub-compatible server for the tests: olah (PyPI) on 127.0.0.1, serving git repos from a folder.

olah serves ``MIRRORS/models/<org>/<name>`` git repositories (branch ``main``, files committed)
over the Hub's HTTP API, so ``from_pretrained("<org>/<name>")`` with ``HF_ENDPOINT`` pointing at
it downloads through huggingface_hub's normal cache. huggingface_hub reads ``HF_ENDPOINT`` when
it is imported, so downloads run in subprocesses started with :meth:`LocalHub.env`.

One deviation of olah 0.5.4 from the Hub is corrected at start-up: in offline mode a file that a
local mirror repo lacks is answered "401 repository not found" instead of "404 entry not found",
and transformers treats the 401 as fatal while probing optional files (``processor_config.json``
in ``pipeline``). The launcher below turns exactly that case back into the Hub's 404.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from remote_code import BLOCK_QUARF_HF

OLAH_LAUNCHER = """
import sys
import olah.server_file_routes as routes
from olah.errors import error_entry_not_found_branch
from olah.server import cli
from olah.server_mirror import has_local_mirror

def missing_entries_are_404(original):
    async def handler(app, repo_type, org, repo, commit, file_path, request):
        response = await original(app, repo_type, org, repo, commit, file_path, request)
        if response.status_code == 401 and has_local_mirror(app, routes.build_repo_ref(repo_type, org, repo)):
            return error_entry_not_found_branch(commit, file_path)
        return response
    return handler

routes.file_head_common = missing_entries_are_404(routes.file_head_common)
routes.file_get_common = missing_entries_are_404(routes.file_get_common)
sys.argv = ["olah-cli", *sys.argv[1:]]
sys.exit(cli())
"""

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalHub:
    def __init__(self, root: Path):
        self.root = root
        self.mirrors = root / "mirrors"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "olah.log"
        self.process: subprocess.Popen | None = None
        self._homes = 0

    def start(self, timeout: float = 60.0) -> None:
        self.mirrors.mkdir(parents=True, exist_ok=True)
        netloc = f"127.0.0.1:{self.port}"
        (self.root / "olah.toml").write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\nrepos-path = "./repos"\n'
            f'mirrors-path = ["./mirrors"]\nmirror-netloc = "{netloc}"\nmirror-lfs-netloc = "{netloc}"\n'
            "[accessibility]\noffline = true\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", OLAH_LAUNCHER, "-c", "olah.toml"],
            cwd=self.root, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"olah did not accept connections within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def publish(self, folder, repo_id: str) -> None:
        """Commits a saved model folder as the repo ``repo_id`` (branch main)."""
        target = self.mirrors / "models" / repo_id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        git = ["git", "-c", "user.name=quarf-tests", "-c", "user.email=tests@localhost", "-C", str(target)]
        subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", f"publish {repo_id}"], check=True)

    def env(self) -> dict:
        """The environment of a process that downloads from this server, with a fresh HF_HOME."""
        self._homes += 1
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update(HF_ENDPOINT=self.endpoint, HF_HOME=str(self.root / f"hf_home_{self._homes}"), HF_HUB_DISABLE_TELEMETRY="1")
        return env

    def run(self, code: str, *, block_quarf_hf: bool, cwd) -> dict:
        """Runs ``code`` in a fresh Python with this server's env; returns the JSON its last line prints."""
        env = self.env()
        script = (BLOCK_QUARF_HF if block_quarf_hf else "") + code
        result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise AssertionError(f"subprocess failed:\n{result.stderr[-4000:]}\nserver log:\n{self.log_path.read_text()[-2000:]}")
        info = json.loads(result.stdout.strip().splitlines()[-1])
        info["hf_home"] = env["HF_HOME"]
        return info

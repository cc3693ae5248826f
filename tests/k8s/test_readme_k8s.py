"""The README's commands for the deployment on the one-node cluster ("Deploying on Kubernetes"), run as
written from the repository's root. Run by `make k8s-e2e`; deselected in `make test`."""

from __future__ import annotations

import subprocess

import pytest

from tests.readme import blocks_run_by

from .cluster import ROOT
from .deployment import require_deployment

pytestmark = pytest.mark.k8s


def test_the_readme_deployment_commands_run() -> None:
    require_deployment()
    blocks = blocks_run_by("tests/k8s/test_readme_k8s.py")
    assert blocks, "no README block is marked to run here"
    for block in blocks:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.text],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"README.md line {block.line}: {proc.stderr}\n{proc.stdout}"
        assert '"healthy": true' in proc.stdout, proc.stdout

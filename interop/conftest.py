"""Shared fixtures: the strata binary (built by `cargo test`) and a fresh demo warehouse."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strata_binary():
    explicit = os.environ.get("STRATA_BIN")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for profile in ("debug", "release"):
        path = os.path.join(target, profile, "strata")
        if os.path.exists(path):
            return path
    raise RuntimeError("build strata first: cargo build -p strata-cli")


class Strata:
    def __init__(self, warehouse):
        self.warehouse = str(warehouse)
        self.binary = strata_binary()

    def run(self, *statements, fmt="csv", demo=False):
        args = [self.binary, "--warehouse", self.warehouse, "--format", fmt]
        if demo:
            args.append("--demo")
        for s in statements:
            args += ["-c", s]
        out = subprocess.run(args, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def path(self, zone, table):
        return os.path.join(self.warehouse, zone, table)


@pytest.fixture
def strata(tmp_path):
    s = Strata(tmp_path / "warehouse")
    s.run("SELECT 1", demo=True)
    return s

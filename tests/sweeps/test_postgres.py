"""Two sweep workers on one study in a real PostgreSQL server (Debian's ``postgresql``
package), as on a cluster; skipped where the server or the driver is not installed."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.conftest import free_port
from tests.sweeps.workers import finish, load, start_workers, worker_cmd, worker_pid


def _server_bin() -> Path | None:
    """The folder of PostgreSQL's initdb and pg_ctl (PATH, then /usr/lib/postgresql/*/bin)."""
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").is_file():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (trust auth); its URL."""
    pytest.importorskip("psycopg", reason="no PostgreSQL driver: pip install 'psycopg[binary]'")
    bin_dir = _server_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server: apt-get install postgresql (initdb, pg_ctl)")
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="braintumor-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root: as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = [*as_user, str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U",
           "postgres", "--no-sync"]  # fmt: skip
    subprocess.run(run, check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data / "db")]
    start = [*pg_ctl, "-o", options, "-l", str(data / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_study_in_postgresql(postgres_url, tiny_root, tmp_path):
    cmd = worker_cmd(tmp_path, tiny_root, postgres_url, 6, "pg")
    finish(start_workers(cmd, 2, tmp_path))
    study = load(postgres_url, "pg")
    trials = study.trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6
    assert len({worker_pid(t) for t in trials}) == 2
    sweep = tmp_path / "outputs" / "optuna" / "pg"
    assert sorted(int(p.name) for p in sweep.iterdir() if p.name.isdigit()) == list(range(6))

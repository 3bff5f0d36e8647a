"""Where an Optuna study lives: ``hydra.sweeper.storage`` as a storage object, a sweep folder
as its study, and the pruner a sweep names.

A storage is written as

- an RDB URL: ``sqlite:////abs/optuna.db`` (one machine), ``postgresql+psycopg://user@host/db``
  or ``mysql+pymysql://...`` (a cluster; with its driver: ``pip install braintumor[postgres]``);
- a journal file on a (shared) filesystem: a path such as ``/shared/optuna.journal`` or
  ``journal:/shared/optuna.journal``; several hosts may append to it (NFSv3 or later).

The sweeper writes ``optuna_study.yaml`` (study name and storage) into its sweep folder, so
the sweep report and the dashboard find the study from the folder alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from braintumor.atomic import write_atomically
from braintumor.errors import UsageError

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "optuna_study.yaml"
# the trial user attribute a pruned trial carries (its epoch), set by the pruning callback
PRUNED_ATTR = "pruned_at_epoch"
JOURNAL_PREFIX = "journal:"
SQLITE_FILE = "optuna.db"
JOURNAL_FILE = "optuna.journal"


def is_journal(spec: str) -> bool:
    """A journal file (a path, or ``journal:<path>``), not an RDB URL."""
    return spec.startswith(JOURNAL_PREFIX) or "://" not in spec


def journal_path(spec: str) -> Path:
    return Path(spec.removeprefix(JOURNAL_PREFIX).removeprefix("//"))


def redact(spec: str) -> str:
    """``spec`` without a password (``postgresql://user:***@host/db``), for logs and files."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", spec)


def open_storage(spec: str) -> optuna.storages.BaseStorage:
    """The Optuna storage of ``spec`` (an RDB URL or a journal file, see the module doc)."""
    import optuna

    if not spec:
        raise UsageError("hydra.sweeper.storage is empty: give an RDB URL or a journal file.")
    if is_journal(spec):
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = journal_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        # the open(O_EXCL) lock works on local disks and NFSv3+, where SQLite's does not
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    if spec.startswith("sqlite:///"):
        Path(spec.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        # a long busy timeout: several workers write to one SQLite file
        engine = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else None
        return optuna.storages.RDBStorage(spec, engine_kwargs=engine)
    except ImportError as error:
        raise UsageError(
            f"the database driver for {redact(spec)} is not installed ({error}). For "
            "PostgreSQL: pip install 'psycopg[binary]' (or 'braintumor[postgres]') and a URL "
            "postgresql+psycopg://user@host/db."
        ) from error


def write_study_file(sweep_dir: Path, study_name: str, storage: str) -> Path:
    """Record the study of a sweep folder (password left out of the storage URL)."""
    text = OmegaConf.to_yaml({"study_name": study_name, "storage": redact(storage)})
    return write_atomically(Path(sweep_dir) / STUDY_FILE, text)


def sweep_study(folder: Path) -> tuple[str | None, str] | None:
    """``(study name or None, storage spec)`` of a sweep folder: its ``optuna_study.yaml``,
    else an ``optuna.db`` or ``optuna.journal`` in it; ``None`` when it has no study."""
    folder = Path(folder)
    recorded = folder / STUDY_FILE
    if recorded.is_file():
        info = OmegaConf.load(recorded)
        if "***" not in str(info.storage):
            return str(info.study_name), str(info.storage)
    if (folder / SQLITE_FILE).is_file():
        return None, f"sqlite:///{(folder / SQLITE_FILE).resolve()}"
    if (folder / JOURNAL_FILE).is_file():
        return None, str((folder / JOURNAL_FILE).resolve())
    return None


def storage_of(target: str) -> str:
    """The storage spec a user points at: an RDB URL, a journal or SQLite file, or a sweep
    folder holding one (what ``make dashboard STUDY=...`` accepts)."""
    if "://" in target and not target.startswith(JOURNAL_PREFIX):
        return target
    path = Path(target.removeprefix(JOURNAL_PREFIX))
    if path.is_dir():
        found = sweep_study(path)
        if found is None:
            raise UsageError(
                f"'{path}' holds no Optuna study ({STUDY_FILE}, {SQLITE_FILE} or "
                f"{JOURNAL_FILE}); point at the sweep folder, e.g. outputs/optuna/cnn_optuna."
            )
        return found[1]
    if not path.is_file():
        raise UsageError(f"no study at '{target}': give a sweep folder, a file or a URL.")
    if path.read_bytes()[:16].startswith(b"SQLite format 3"):
        return f"sqlite:///{path.resolve()}"
    return str(path.resolve())


def build_pruner(name: str, pruners: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """The pruner ``name`` from ``pruners`` (name -> ``_target_`` config)."""
    from hydra.utils import instantiate

    if name not in pruners:
        raise UsageError(
            f"unknown pruner '{name}' (hparams_search.pruner / hydra.sweeper.pruner); "
            f"choose one of: {', '.join(pruners)}."
        )
    return instantiate(pruners[name])

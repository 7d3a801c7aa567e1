"""One `povguard up` per fault module: the faults are real kills of its processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from system_helpers import running_up


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    data_dir = tmp_path_factory.mktemp("system")
    with running_up(data_dir) as ports:
        yield data_dir, ports

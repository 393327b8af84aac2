"""The log archive's settings: a bad value is one line naming the variable (exit 2), never a
log that silently stops being flushed or archived."""

from __future__ import annotations

import pytest

from k8sco.data.kube import DataConfig
from k8sco.errors import UsageError
from k8sco.kube.archive import ENV_CHUNK, ENV_FLUSH, ENV_FOLLOW, Archiver

CONFIG = DataConfig.from_env({"K8SCO_DATA_STORE": "pvc:k8sco-data"})


class Streaming:
    def stream(self) -> None: ...


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (ENV_FLUSH, "nan", "give a number >= 0"),
        (ENV_FLUSH, "inf", "give a number >= 0"),
        (ENV_FLUSH, "-1", "give a number >= 0"),
        (ENV_CHUNK, "0", "give a number >= 1"),
        (ENV_CHUNK, "1M", "give a number >= 1"),
        (ENV_FOLLOW, "many", "give a number >= 0"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"^{name}={value!r}: {message}$"):
        Archiver(Streaming(), CONFIG, {name: value})  # type: ignore[arg-type]


def test_good_values_are_taken() -> None:
    archiver = Archiver(
        Streaming(),  # type: ignore[arg-type]
        CONFIG,
        {ENV_FLUSH: "0.5", ENV_CHUNK: "4096", ENV_FOLLOW: "0"},
    )
    assert (archiver.flush_every, archiver.chunk_bytes, archiver.follow_max) == (0.5, 4096, 0)

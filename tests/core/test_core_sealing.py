"""Keyed result seals: a per-results-directory key, HMAC over the canonical JSON, forged files rejected."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from tests.core.test_core_report import fake_result
from xalbench.cli import main
from xalbench.errors import ConfigError
from xalbench.results import (
    ForgedResultError,
    atomic_write_json,
    content_hash,
    iter_results,
    move_aside,
    read_verified,
    seal,
)
from xalbench.sealing import KEY_BYTES, MAC_FIELD, Sealer, key_path


def _cell(seed: int = 0, acc: float = 0.5) -> dict:
    return fake_result("random+ce", "random", seed, [acc, acc + 0.1], [0.2, 0.3])


def test_roundtrip_through_a_file(tmp_path) -> None:
    sealer = Sealer.for_results(tmp_path)
    sealed = sealer.seal(_cell())
    assert sealer.verify(sealed) and sealer.reason(sealed) is None
    assert sealed["content_sha256"] == content_hash(sealed)  # the unkeyed hash stays for the leaderboard
    atomic_write_json(tmp_path / "cells" / "c.json", sealed)
    back = read_verified(tmp_path / "cells" / "c.json", sealer=sealer)
    assert back == sealed and sealer.verify(back)
    assert sealer.seal(sealed) == sealed  # resealing a sealed dict changes nothing


def test_tampering_is_detected_however_it_is_resealed(tmp_path) -> None:
    sealer = Sealer.for_results(tmp_path)
    sealed = sealer.seal(_cell())
    edited = json.loads(json.dumps(sealed))
    edited["summary"]["aulc_acc"] = 0.05
    assert "does not verify" in sealer.reason(edited)
    assert "does not verify" in sealer.reason(seal(edited))  # content hash recomputed, stale MAC kept
    stripped = seal({k: v for k, v in edited.items() if k != MAC_FIELD})  # the old unkeyed seal, no MAC
    assert "unkeyed legacy seal" in sealer.reason(stripped)
    assert "not sealed" in sealer.reason({"a": 1})
    other = Sealer.for_results(tmp_path / "other-run")
    assert "another results directory" in other.reason(sealed)
    hash_only = dict(sealed, content_sha256="0" * 64)
    assert not sealer.verify(hash_only)


def test_key_file_is_private_and_shared_by_later_sealers(tmp_path) -> None:
    first = Sealer.for_results(tmp_path)
    path = key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_size == KEY_BYTES
    second = Sealer.for_results(tmp_path)
    cell = _cell()
    assert first.mac(cell) == second.mac(cell) == Sealer.existing(tmp_path).mac(cell)
    assert Sealer.existing(tmp_path / "elsewhere") is None and not key_path(tmp_path / "elsewhere").exists()
    assert "key hidden" in repr(first)


def test_unsafe_or_damaged_keys_are_refused(tmp_path) -> None:
    Sealer.for_results(tmp_path)
    path = key_path(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Sealer.for_results(tmp_path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="not a 32-byte seal key"):
        Sealer.existing(tmp_path)


def test_concurrent_creators_end_up_with_one_key(tmp_path) -> None:
    go_read, go_write = os.pipe()
    children = []
    for _ in range(4):
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            try:
                os.read(go_read, 1)  # all start together
                mac = Sealer.for_results(tmp_path).mac({"x": 1}).encode()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                mac = repr(exc).encode()
            os.write(wr, mac)
            os._exit(0)
        os.close(wr)
        children.append((pid, rd))
    os.write(go_write, b"gggg")
    macs = set()
    for pid, rd in children:
        with os.fdopen(rd, "rb") as fh:
            macs.add(fh.read())
        os.waitpid(pid, 0)
    os.close(go_read)
    os.close(go_write)
    assert len(macs) == 1 and len(next(iter(macs))) == 64, macs
    assert sorted(p.name for p in key_path(tmp_path).parent.iterdir()) == ["seal.key"]
    assert Sealer.existing(tmp_path).mac({"x": 1}).encode() in macs


def test_read_verified_raises_forged_and_move_aside_keeps_it(tmp_path) -> None:
    sealer = Sealer.for_results(tmp_path)
    path = tmp_path / "cells" / "c.json"
    atomic_write_json(path, seal(_cell()))
    with pytest.raises(ForgedResultError, match="c.json is rejected as forged .unkeyed legacy seal"):
        read_verified(path, sealer=sealer)
    read_verified(path)  # without a sealer: the content hash alone still matches
    target = move_aside(path, to="forged")
    assert target.name == "c.json.forged" and not path.exists()


@pytest.fixture
def keyed_run(tmp_path):
    sealer = Sealer.for_results(tmp_path)
    rng = np.random.default_rng(0)
    for seed in range(3):
        base = float(rng.uniform(0.4, 0.5))
        atomic_write_json(tmp_path / "cells" / f"r{seed}.json", sealer.seal(_cell(seed, base)))
        atomic_write_json(tmp_path / "cells" / f"e{seed}.json",
                          sealer.seal(fake_result("entropy+ce", "entropy", seed, [base, base + 0.2], [0.3, 0.4])))
    return tmp_path


def test_report_rejects_a_cell_resealed_without_the_key(keyed_run, capsys) -> None:
    assert main(["report", str(keyed_run), "--format", "json"]) == 0
    honest = json.loads(capsys.readouterr().out)
    assert len(list(iter_results(keyed_run))) == 6

    path = keyed_run / "cells" / "r0.json"
    forged = json.loads(path.read_text())
    forged["summary"]["aulc_acc"] = 0.05
    forged.pop(MAC_FIELD)
    atomic_write_json(path, seal(forged))  # the project's own unkeyed seal function: content_sha256 matches
    assert main(["report", str(keyed_run), "--format", "json"]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "result file skipped" in line]
    assert len(lines) == 1 and "r0.json" in lines[0] and "unkeyed legacy seal" in lines[0]
    data = json.loads(captured.out)
    assert data["damaged"] == [str(path)]
    rows = {r["method"]: r for r in data["leaderboard"]}
    honest_rows = {r["method"]: r for r in honest["leaderboard"]}
    assert rows["random+ce"]["aulc_acc_mean"] != pytest.approx(0.05)
    assert rows["random+ce"]["n_seeds"] == honest_rows["random+ce"]["n_seeds"] - 1


def test_a_directory_without_a_key_is_read_by_content_hash(tmp_path, capsys) -> None:
    for seed in range(2):
        atomic_write_json(tmp_path / "cells" / f"r{seed}.json", seal(_cell(seed)))
    assert main(["report", str(tmp_path), "--format", "csv"]) == 0
    assert not key_path(tmp_path).exists()  # reading never creates a key

"""Suite files: registered suites parse; malformed ones name the file and the key."""

from __future__ import annotations

import pytest

from xalbench.cli import main
from xalbench.errors import ConfigError
from xalbench.plugins import load_registry
from xalbench.suite import parse_suite


def test_every_registered_suite_parses_and_names_registered_components() -> None:
    reg = load_registry()
    for name in reg.names("suite"):
        suite = reg.get("suite", name).load()
        assert suite.name == name
        assert suite.description, f"suite {name} must say what it measures"
        reg.get("model", suite.model.name)
        reg.get("protocol", suite.protocol_base)
        for m in suite.methods:
            reg.record("strategy", m.strategy.name)
            reg.record("loss", m.loss.name)


def test_smoke_suite_shape() -> None:
    suite = load_registry().get("suite", "smoke").load()
    assert len(suite.datasets) == 1 and len(suite.seeds) == 2
    assert len({m.strategy.name for m in suite.methods}) >= 3
    assert suite.protocol_overrides["rounds"] == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "x"\nbogus = 1\n[[datasets]]\nname="d"', "bogus"),
        ('name = "x"\nstrategies=["random"]\n[training]\nepochz = 3\n[[datasets]]\nname="d"', "epochz"),
        ('name = "x"\nstrategies=["random"]', "datasets"),
        ('name = "x"\nstrategies=["random"]\n[[datasets]]\nname="d"\n[track]\npool_masks="maybe"', "track"),
        ('name = "x"\nstrategies=["random"]\n[[datasets]]\nname="d"\nseeds=[1', "invalid TOML"),
    ],
)
def test_malformed_suite_names_file_and_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_suite(text, where="suites/bad.toml")
    assert "suites/bad.toml" in str(err.value) and needle in str(err.value)


def test_cli_malformed_suite_exits_2_with_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nstrategies = ["random"]\nwat = 1\n[[datasets]]\nname = "synth-lesion-2d"\n')
    assert main(["run", "--suite", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.toml" in err[0] and "wat" in err[0]


def test_cli_unknown_suite_suggests(capsys, tmp_path) -> None:
    assert main(["run", "--suite", "smok", "--out", str(tmp_path), "--quiet"]) == 2
    assert "did you mean 'smoke'" in capsys.readouterr().err


def test_cli_unknown_strategy_suggests(capsys, tmp_path) -> None:
    assert main(["run", "--suite", "smoke", "--strategies", "entropyy", "--out", str(tmp_path), "--quiet"]) == 2
    assert "did you mean 'entropy'" in capsys.readouterr().err


def test_cli_protocol_override_uses_published_protocol(tmp_path, capsys) -> None:
    assert main(["run", "--suite", "smoke", "--protocol", "egl", "--out", str(tmp_path), "--quiet"]) == 2
    assert "did you mean 'egal'" in capsys.readouterr().err

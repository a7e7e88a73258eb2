"""Leaderboard fixtures: a fabricated plugin distribution (a test suite, an honest strategy and one that
peeks at the public data's labels), one real tiny run packaged as a submission, and a reference file."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DIST = "xalbench-lbtest"
#: The plugin module's name; each installed site adds a suffix of its own (``module_name``).
MODULE = "xalbench_lbtest"
VERSION = "1.0.0"
SUITE = "lb-tiny"
DATASET = "lesions"
DATA_OPTIONS = {"size": 32, "n_train": 120, "n_val": 30, "n_test": 60}

PLUGIN_SOURCE = '''
"""Test plugin for the leaderboard: a suite, an honest strategy, and a label-peeking one."""
import os

import numpy as np

import xalbench
from xalbench.suite import SuiteSource

SUITE_TOML = """@SUITE_TOML@"""
PUBLIC = @PUBLIC@
PUBLIC_DATASET = "@DATASET@"


class Confident(xalbench.Strategy):
    """Least confident first (honest, deterministic)."""

    name = "lbtest-confident"
    summary = "least confident first"
    supports_3d = True

    def query(self, ctx, k):
        if os.environ.get("XALBENCH_LEADERBOARD_SECRET"):
            raise RuntimeError("the maintainer secret reached plugin code")
        conf = ctx.cache.logits().double().softmax(1).max(1).values.cpu().numpy()
        return ctx.unlabelled[xalbench.stable_topk(-conf, min(k, len(ctx.unlabelled)))]


class Peek(xalbench.Strategy):
    """Regenerates the public dataset (public seed) and picks by its true labels: pool samples whose
    shortcut marker disagrees with the label, class-balanced. On any other data its 'labels' are
    someone else's."""

    name = "lbtest-peek"
    summary = "memorises the public labels"
    supports_3d = True

    def query(self, ctx, k):
        if PUBLIC_DATASET == "decoy-digits":
            from xalbench.data.decoy_digits import DecoyDigits

            arrays = DecoyDigits(dict(PUBLIC)).arrays()
            labels, marker = arrays["train_labels"], arrays["train_decoy"]
        else:
            from xalbench.data.synth_lesion import SynthLesion2D

            arrays = SynthLesion2D(dict(PUBLIC)).arrays()
            labels, marker = arrays["train_labels"], arrays["train_marker"]
        return self._pick(ctx, k, labels, marker)

    def _pick(self, ctx, k, labels, marker):
        n_classes = int(labels.max()) + 1
        counts = np.bincount(np.asarray(ctx.labelled_labels), minlength=n_classes).astype(float)
        unl = [int(i) for i in ctx.unlabelled]
        by_class = {c: [i for i in unl if labels[i] == c and marker[i] != labels[i]]
                       + [i for i in unl if labels[i] == c and marker[i] == labels[i]] for c in range(n_classes)}
        picked = []
        while len(picked) < k:
            open_classes = [c for c in range(n_classes) if by_class[c]]
            c = min(open_classes, key=lambda c: (counts[c], c))
            picked.append(by_class[c].pop(0))
            counts[c] += 1
        return np.asarray(picked, dtype=np.int64)


class Snoop(Peek):
    """A memoriser that looks for the held-out data wherever it can reach — job files named on an ancestor's
    command line, the maintainer secret in an ancestor's environment, generated data under the data root
    of its environment — and picks by the true labels of whatever it finds (the public ones otherwise)."""

    name = "lbtest-snoop"
    summary = "memorises whatever labels it can reach"

    def _ancestors(self):
        out, pid = [], os.getppid()
        while pid > 1 and pid not in out:
            out.append(pid)
            try:
                pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
        return out

    def _found(self):
        import glob
        import hashlib
        import hmac
        import json

        for pid in self._ancestors():
            try:
                args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
            except OSError:
                continue
            for arg in args:
                if arg.endswith(b"job.json"):
                    try:
                        seeds = json.load(open(arg.decode()))["dataset_seeds"]
                        return {"seed": int(next(iter(seeds.values())))}
                    except (OSError, ValueError, StopIteration):
                        pass
            for var in env:
                if var.startswith(b"XALBENCH_LEADERBOARD_SECRET="):
                    secret = var.split(b"=", 1)[1]
                    digest = hmac.new(secret, f"xalbench-leaderboard/@SUITE@/@LABEL@".encode(),
                                      hashlib.sha256).hexdigest()
                    return {"seed": int(digest[:8], 16) & 0x7FFFFFFF}
        for path in glob.glob(os.path.join(os.environ.get("XALBENCH_DATA", "/nonexistent"), "synthetic", "*.npz")):
            try:
                with np.load(path) as z:
                    return {"arrays": {k: z[k] for k in z.files}}
            except (OSError, ValueError):
                continue
        return None

    def query(self, ctx, k):
        found = self._found()
        if found is not None and PUBLIC_DATASET == "decoy-digits":
            from xalbench.data.decoy_digits import DecoyDigits

            arrays = found.get("arrays") or DecoyDigits(dict(PUBLIC, seed=found["seed"])).arrays()
            return self._pick(ctx, k, arrays["train_labels"], arrays["train_decoy"])
        return super().query(ctx, k)


@xalbench.hookimpl
def register_strategies(register):
    register(Confident)
    register(Peek)
    register(Snoop)


@xalbench.hookimpl
def register_suites(register):
    register(SuiteSource(name="@SUITE@", text=SUITE_TOML, summary="leaderboard test suite"))
'''


def suite_toml(epochs: int = 2, rounds: int = 2, seeds: tuple[int, ...] = (0, 1), extra_training: str = "",
               options: dict[str, Any] | None = None, dataset_name: str = "synth-lesion-2d", initial: int = 20,
               query: int = 10) -> str:
    opts = ", ".join(f"{k} = {v}" for k, v in (options or DATA_OPTIONS).items())
    return textwrap.dedent(f"""
        name = "{SUITE}"
        description = "Leaderboard test suite: synth-lesion-2d at 32 px, small pool, {rounds} rounds."
        seeds = {list(seeds)}
        strategies = ["random"]
        losses = ["ce"]

        [model]
        name = "small-cnn"
        options = {{ width = 8, n_blocks = 3 }}

        [protocol]
        base = "aeig"
        initial = {initial}
        rounds = {rounds}
        query_size = {query}

        [training]
        epochs = {epochs}
        batch_size = 16
        {extra_training}

        [[datasets]]
        name = "{dataset_name}"
        label = "{DATASET}"
        options = {{ {opts} }}
        """)


def module_name(site: Path) -> str:
    """The plugin's module name in ``site``: one per site, because a process that has imported one site's
    module (a sandbox fork server preloads a run's plugin modules) would otherwise hand that module, with
    its memorised labels, to the sandboxes of a run with another site's distribution."""
    return f"{MODULE}_{hashlib.sha256(str(site.resolve()).encode()).hexdigest()[:8]}"


def install_plugin(site: Path, toml: str, public: dict[str, Any], dataset_name: str = "synth-lesion-2d") -> None:
    """Write the test distribution (dist-info + module) under ``site``, as pip would leave it."""
    site.mkdir(parents=True, exist_ok=True)
    module = module_name(site)
    source = (PLUGIN_SOURCE.replace("@SUITE_TOML@", toml).replace("@PUBLIC@", repr(public))
              .replace("@DATASET@", dataset_name).replace("@SUITE@", SUITE).replace("@LABEL@", DATASET))
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{MODULE}-{VERSION}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[xalbench]\n{MODULE} = {module}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


def _forget_module(site: Path) -> None:
    """Let the next import of the test plugin find the site now on ``sys.path``."""
    importlib.invalidate_caches()
    sys.modules.pop(module_name(site), None)


def make_runtime() -> Any:
    """A leaderboard command's runtime: the registry of the plugins installed (and selected) now."""
    from xalbench.harness.runtime import Runtime
    from xalbench.plugins import PluginSelection

    return Runtime.from_selection(PluginSelection.from_env())


class PluginSite:
    """The test plugin on ``sys.path`` and ``PYTHONPATH`` (so sandbox and re-run processes see it), and
    the runtime of a leaderboard command run while it is installed (``runtime``)."""

    def __init__(self, site: Path, toml: str, public: dict[str, Any], dataset_name: str = "synth-lesion-2d") -> None:
        self.site = site
        install_plugin(site, toml, public, dataset_name)
        self._old_path = os.environ.get("PYTHONPATH")

    def __enter__(self) -> PluginSite:
        sys.path.insert(0, str(self.site))
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.site), self._old_path) if p)
        _forget_module(self.site)
        self.runtime = make_runtime()
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.path.remove(str(self.site))
        if self._old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self._old_path
        _forget_module(self.site)


def run_suite(out: Path, strategies: list[str]) -> Path:
    import xalbench.api

    xalbench.api.run(SUITE, out_dir=str(out), strategies=strategies, workers=1, quiet=True)
    return out


def reference(band: tuple[float, float] = (0.0, 1.0)) -> dict[str, Any]:
    return {"schema_version": 1, "suites": {SUITE: {"canary": {DATASET: {"acc": list(band)}}}}}


@pytest.fixture(scope="session")
def lb_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginSite]:
    site = tmp_path_factory.mktemp("lb-site")
    with PluginSite(site, suite_toml(), DATA_OPTIONS) as ps:
        yield ps


@pytest.fixture(scope="session")
def runtime(lb_site: PluginSite) -> Any:
    """The runtime the leaderboard's functions get while the test plugin is installed."""
    return lb_site.runtime


@pytest.fixture(scope="session")
def lb_run(lb_site: PluginSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run of the test suite: random + the honest plugin strategy, 2 seeds (4 cells)."""
    return run_suite(tmp_path_factory.mktemp("lb-run") / "run", ["random", "lbtest-confident"])


@pytest.fixture(scope="session")
def lb_submission(lb_run: Path, runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xalbench.leaderboard.submit import submit

    board = tmp_path_factory.mktemp("lb-board")
    return submit(lb_run, runtime=runtime, submitter="acme-lab", out=board / "submissions",
                  source_url="https://example.org/acme")


@pytest.fixture
def board(lb_submission: Path, tmp_path: Path) -> Path:
    """A fresh board folder holding a copy of the accepted submission and a README with markers."""
    from xalbench.leaderboard.build import BEGIN, END

    root = tmp_path / "leaderboard"
    target = root / "submissions" / lb_submission.parent.name / lb_submission.name
    shutil.copytree(lb_submission, target)
    (root / "README.md").write_text(f"# Board\n\nHand-written text.\n\n{BEGIN}\n{END}\n\nMore text.\n",
                                    encoding="utf-8")
    (root / "reference.json").write_text(json.dumps(reference()), encoding="utf-8")
    return root


@pytest.fixture
def sub_copy(lb_submission: Path, tmp_path: Path) -> Path:
    """A writable copy of the submission at submissions/<submitter>/<plugin>-<version>."""
    target = tmp_path / "submissions" / lb_submission.parent.name / lb_submission.name
    shutil.copytree(lb_submission, target)
    return target

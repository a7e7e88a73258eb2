"""Name screening: the first trick found names the reason."""

from __future__ import annotations

import pytest

from xalbench.leaderboard import names
from xalbench.leaderboard.reasons import Rejection


@pytest.mark.parametrize(("check", "value", "code"), [
    (names.check_submitter, "<script>alert(1)</script>", "name-markup"),
    (names.check_submitter, "</script>", "name-markup"),
    (names.check_submitter, 'x" onmouseover="y', "name-markup"),
    (names.check_submitter, "a|b", "name-markup"),
    (names.check_submitter, "a\nb", "name-markup"),
    (names.check_submitter, "<!--", "name-markup"),
    (names.check_component, "javascript:x", "name-markup"),
    (names.check_submitter, "acme\u202elab", "name-bidi"),
    (names.check_submitter, "acme\u2066lab", "name-bidi"),
    (names.check_submitter, "acme\u200dlab", "name-zero-width"),
    (names.check_submitter, "acme\ufefflab", "name-zero-width"),
    (names.check_component, "r\u0430ndom", "name-homoglyph"),  # Cyrillic a
    (names.check_component, "\u0435ntropy", "name-homoglyph"),  # Cyrillic e
    (names.check_component, "rand0m", "name-homoglyph"),
    (names.check_component, "margln", "name-homoglyph"),
    (names.check_component, "ｒａｎｄｏｍ", "name-homoglyph"),  # fullwidth
    (names.check_method_text, "r\u0430ndom+ce", "name-homoglyph"),
    (names.check_method_text, "entropy/../ce", "name-not-slug"),
    (names.check_method_text, "entropy//ce", "name-not-slug"),
    (names.check_submitter, "x" * 40, "name-too-long"),
    (names.check_component, "Random", "name-homoglyph"),
    (names.check_component, "MyStrategy", "name-not-slug"),
    (names.check_component, "caf\u00e9", "name-not-slug"),
    (names.check_version, "1.0+local", "name-not-slug"),
    (names.check_version, "1.0.dirty", "name-not-slug"),
    (names.check_url, "javascript:alert(1)", "url-invalid"),
    (names.check_url, "data:text/html;base64,PHNjcmlwdD4=", "url-invalid"),
    (names.check_url, "http://example.org", "url-invalid"),
    (names.check_url, 'https://example.org/"onmouseover=x', "url-invalid"),
])
def test_rejected(check, value: str, code: str) -> None:
    with pytest.raises(Rejection) as err:
        check(value, "name")
    assert err.value.code == code


@pytest.mark.parametrize(("check", "value"), [
    (names.check_submitter, "acme-lab"), (names.check_component, "random"), (names.check_component, "my-entropy2"),
    (names.check_distribution, "xalbench-egal"), (names.check_version, "1.2.0rc1"),
    (names.check_method_text, "random+ce"), (names.check_method_text, "bald+dice+masks=synthetic"),
    (names.check_method_text, "entropy/SAL"),  # a shipped suite's method label
    (names.check_url, "https://github.com/me/my-plugin"), (names.check_dataset_text, "medmnist:dermamnist@28"),
])
def test_accepted(check, value: str) -> None:
    assert check(value, "name") == value


def test_skeleton_folds_confusables() -> None:
    assert names.skeleton("r\u0430nd\u043em") == names.skeleton("random") == names.skeleton("randorn")

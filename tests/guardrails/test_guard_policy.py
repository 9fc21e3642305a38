from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from guardrails.policy import PolicyError, load_policy, parse_policy
from guardrails.settings import default_policy_path


def _packaged() -> dict[str, object]:
    data = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_packaged_policy_loads_with_version_and_bilingual_refusals() -> None:
    policy = load_policy(default_policy_path())
    assert policy.version
    assert policy.input.injection.fail_open is False  # input fails closed by default
    assert policy.service_fail_open.input is False
    assert policy.refusal("topics", "ko") != policy.refusal("topics", "en")
    assert policy.refusal("no-such-rail", "fr") == policy.refusals["en"]["default"]


def test_out_of_range_threshold_names_the_key_and_value() -> None:
    data = _packaged()
    data["input"]["injection"]["threshold"] = 1.5  # type: ignore[index]
    with pytest.raises(PolicyError) as err:
        parse_policy(data, source="p.yaml")
    message = str(err.value)
    assert "p.yaml" in message
    assert "input.injection.threshold" in message and "1.5" in message


def test_unknown_keys_and_actions_are_reported_together() -> None:
    data = _packaged()
    data["input"]["injection"]["action"] = "warn"  # type: ignore[index]
    data["input"]["jailbreak"] = {"enabled": True}  # type: ignore[index]
    with pytest.raises(PolicyError) as err:
        parse_policy(data)
    message = str(err.value)
    assert "input.injection.action" in message and "'warn'" in message
    assert "input.jailbreak: unknown key" in message


def test_missing_version_and_english_refusal_are_clear() -> None:
    data = _packaged()
    del data["version"]
    with pytest.raises(PolicyError, match="version: Field required"):
        parse_policy(data)
    data = _packaged()
    data["refusals"] = {"ko": {"default": "안 됩니다."}}
    with pytest.raises(PolicyError, match="'en' entry"):
        parse_policy(data)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="expected a mapping"):
        load_policy(scalar)

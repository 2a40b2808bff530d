"""Settings: typed and defaulted; a bad value warns and falls back."""

from osslsp.settings import Settings, read_settings


def test_camel_case_keys_set_fields():
    settings, warnings = read_settings({"maxNewTokens": 32, "languages": ["python"], "temperature": 0.2})
    assert (settings.max_new_tokens, settings.languages, settings.temperature) == (32, ("python",), 0.2)
    assert warnings == []


def test_wrapped_section_is_unwrapped():
    settings, _ = read_settings({"osslsp": {"dtype": "bfloat16"}})
    assert settings.dtype == "bfloat16"


def test_bad_values_warn_and_keep_the_previous_value():
    base = Settings(max_new_tokens=10)
    settings, warnings = read_settings({"maxNewTokens": "lots", "dtype": "fp8", "contextTokens": 10, "bogus": 1}, base)
    assert settings == base
    assert len(warnings) == 4
    assert any("maxNewTokens" in w and "number" in w for w in warnings)
    assert any("bogus" in w for w in warnings)


def test_not_an_object_falls_back_to_defaults():
    settings, warnings = read_settings(["nope"])
    assert settings == Settings() and warnings

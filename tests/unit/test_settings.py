"""Settings: the API key is required outside simulator mode, with an error naming the variable."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("LETZAI_API_KEY", "LETZAI_SIMULATOR", "LETZAI_BASE_URL", "LETZAI_ORGANIZATION_ID"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_missing_api_key_is_a_clear_error_naming_the_variable():
    with pytest.raises(ConfigError, match="LETZAI_API_KEY"):
        Settings()


def test_get_settings_raises_config_error_too():
    with pytest.raises(ConfigError, match="LETZAI_API_KEY"):
        get_settings()


def test_simulator_mode_needs_no_key(monkeypatch):
    monkeypatch.setenv("LETZAI_SIMULATOR", "1")
    settings = Settings()
    assert settings.letzai_simulator and settings.api_key == "sim-key"


def test_key_from_env_and_never_in_repr(monkeypatch):
    monkeypatch.setenv("LETZAI_API_KEY", "sk-very-secret-1")
    monkeypatch.setenv("LETZAI_ORGANIZATION_ID", "org-9")
    settings = Settings()
    assert settings.api_key == "sk-very-secret-1" and settings.letzai_organization_id == "org-9"
    assert "sk-very-secret-1" not in repr(settings) and "sk-very-secret-1" not in str(settings)


def test_key_from_dotenv_file(tmp_path):
    (tmp_path / ".env").write_text("LETZAI_API_KEY=from-dotenv\n")
    assert Settings().api_key == "from-dotenv"


def test_invalid_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("LETZAI_API_KEY", "k")
    monkeypatch.setenv("LETZAI_MAX_INFLIGHT", "0")
    with pytest.raises(ConfigError, match="letzai_max_inflight"):
        get_settings()

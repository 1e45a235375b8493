import pytest

from resilia.config import ConfigurationError, Environment, load_settings


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_each_environment_loads(name):
    settings = load_settings(name, environ={})
    assert settings.environment is Environment(name)


def test_environment_comes_from_variable():
    assert (
        load_settings(environ={"RESILIA_ENV": "staging"}).environment
        is Environment.STAGING
    )


def test_default_is_dev():
    assert load_settings(environ={}).environment is Environment.DEV


def test_name_is_case_and_space_insensitive():
    assert load_settings(" PROD ", environ={}).environment is Environment.PROD


def test_unknown_environment_names_the_valid_ones():
    with pytest.raises(
        ConfigurationError, match=r"unknown environment 'prd'.*dev, staging, prod"
    ):
        load_settings(environ={"RESILIA_ENV": "prd"})


def test_environments_differ_where_they_should():
    dev, prod = load_settings("dev", environ={}), load_settings("prod", environ={})
    assert dev.log_level == "DEBUG" and prod.log_level == "WARNING"
    assert prod.data.n_customers > dev.data.n_customers
    assert prod.model.min_roc_auc > dev.model.min_roc_auc


def test_variable_overrides_file_value():
    settings = load_settings(
        "staging",
        environ={"RESILIA_LOG_LEVEL": "DEBUG", "RESILIA_MODEL__TEST_SIZE": "0.3"},
    )
    assert settings.log_level == "DEBUG"
    assert settings.model.test_size == 0.3


def test_out_of_range_override_names_the_field():
    with pytest.raises(ConfigurationError, match=r"model\.test_size"):
        load_settings("dev", environ={"RESILIA_MODEL__TEST_SIZE": "0.9"})


def test_unknown_setting_is_rejected():
    with pytest.raises(ConfigurationError, match=r"model\.learning_rate"):
        load_settings("dev", environ={"RESILIA_MODEL__LEARNING_RATE": "0.1"})


def test_settings_are_immutable():
    settings = load_settings("dev", environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "ERROR"


def test_caller_overrides_win_and_are_validated():
    settings = load_settings("dev", environ={}, overrides={"api": {"port": 8080}})
    assert settings.api.port == 8080
    with pytest.raises(
        ConfigurationError, match=r"api\.port: .*less than or equal to 65535"
    ):
        load_settings("dev", environ={}, overrides={"api": {"port": 70000}})


def test_environment_files_hold_only_what_differs_from_base():
    import tomllib
    from importlib import resources

    folder = resources.files("resilia") / "settings"
    base = tomllib.loads((folder / "base.toml").read_text(encoding="utf-8"))

    def leaves(tree, prefix=()):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value, (*prefix, key))
            else:
                yield (*prefix, key), value

    base_leaves = dict(leaves(base))
    for name in ("dev", "staging", "prod"):
        env = tomllib.loads((folder / f"{name}.toml").read_text(encoding="utf-8"))
        same = [k for k, v in leaves(env) if base_leaves.get(k, object()) == v]
        assert not same, f"{name}.toml repeats base.toml: {same}"


def test_malformed_settings_file_is_named(tmp_path, monkeypatch):
    import resilia.config

    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "base.toml").write_text("[api\nport = 1\n")
    monkeypatch.setattr(resilia.config.resources, "files", lambda _: tmp_path)
    with pytest.raises(
        ConfigurationError, match=r"settings/base\.toml is not valid TOML"
    ):
        load_settings("dev", environ={})

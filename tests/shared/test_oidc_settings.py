"""The single-sign-on settings: read from ``<SVC>_OIDC_*``, and refused when they would accept
tokens they should not (no audience, plain http to a remote host, ``none`` or HS*)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.oidc import OidcConfig
from tests.support.sso_app import SsoTestSettings

ISSUER = "https://login.example-group.test/realms/dealers"


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSOTEST_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("SSOTEST_OIDC_AUDIENCE", "vo-leads-api")
    monkeypatch.setenv("SSOTEST_OIDC_ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("SSOTEST_OIDC_ALGORITHMS", "RS256, ES256")
    monkeypatch.setenv("SSOTEST_OIDC_LEEWAY_S", "10")

    settings = SsoTestSettings()
    config = OidcConfig.from_settings(settings)

    assert settings.oidc_enabled
    assert config.issuer == ISSUER
    assert config.audience == "vo-leads-api"
    assert config.roles_claim == "realm_access.roles"
    assert config.sites_claim == "sites"
    assert config.algorithms == ("RS256", "ES256")
    assert config.leeway_s == 10
    assert config.jwks_url is None  # from the discovery document
    assert config.discovery_url == f"{ISSUER}/.well-known/openid-configuration"


def test_off_by_default() -> None:
    settings = SsoTestSettings()

    assert not settings.oidc_enabled
    with pytest.raises(ValueError, match="not configured"):
        OidcConfig.from_settings(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"oidc_issuer": ISSUER}, "needs oidc_audience"),
        ({"oidc_audience": "vo-leads-api"}, "need oidc_issuer"),
        ({"oidc_issuer": "http://login.example.test/r", "oidc_audience": "a"}, "https"),
        (
            {"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_jwks_url": "http://x.test/k"},
            "https",
        ),
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_algorithms": "none"}, "subset"),
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_algorithms": "RS256,HS256"}, "subset"),
        ({"oidc_issuer": ISSUER, "oidc_audience": "a", "oidc_algorithms": ""}, "subset"),
    ],
)
def test_unsafe_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SsoTestSettings(**values)


def test_plain_http_is_for_loopback_only() -> None:
    settings = SsoTestSettings(
        oidc_issuer="http://127.0.0.1:18080/realms/vo-leads", oidc_audience="vo-leads-api"
    )

    assert settings.oidc_enabled

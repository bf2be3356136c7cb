"""The OIDC part of a service's settings, as the verifier needs it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ServiceSettings


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None  # None: from the issuer's discovery document
    roles_claim: str = "roles"
    sites_claim: str = "sites"
    name_claim: str = "name"
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256")
    leeway_s: float = 30.0
    jwks_max_age_s: float = 3600.0
    jwks_min_refresh_interval_s: float = 10.0
    http_timeout_s: float = 5.0

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> OidcConfig:
        if settings.oidc_issuer is None or settings.oidc_audience is None:
            raise ValueError("single sign-on is not configured (oidc_issuer, oidc_audience)")
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            roles_claim=settings.oidc_roles_claim,
            sites_claim=settings.oidc_sites_claim,
            name_claim=settings.oidc_name_claim,
            algorithms=settings.oidc_algorithms,
            leeway_s=settings.oidc_leeway_s,
            jwks_max_age_s=settings.oidc_jwks_max_age_s,
            jwks_min_refresh_interval_s=settings.oidc_jwks_min_refresh_interval_s,
            http_timeout_s=settings.oidc_http_timeout_s,
        )

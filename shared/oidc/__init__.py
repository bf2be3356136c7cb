"""Single sign-on: OIDC access tokens (JWT) of a dealer group's identity provider, checked
against its JWKS, beside the API tokens of machines. See docs/operations.md, "Single sign-on".

``require_roles`` (``shared.api``) sends a bearer token here when the service has
``<SVC>_OIDC_ISSUER`` set and the token looks like a JWT; anything else is an API token.
"""

from shared.oidc.claims import Identity, actor_id, identity_from_claims
from shared.oidc.component import oidc_verifier
from shared.oidc.config import OidcConfig
from shared.oidc.errors import KeysUnavailable, TokenRejected
from shared.oidc.keys import HttpJwksSource, JwksCache
from shared.oidc.verifier import OidcVerifier, looks_like_jwt

__all__ = [
    "HttpJwksSource",
    "Identity",
    "JwksCache",
    "KeysUnavailable",
    "OidcConfig",
    "OidcVerifier",
    "TokenRejected",
    "actor_id",
    "identity_from_claims",
    "looks_like_jwt",
    "oidc_verifier",
]

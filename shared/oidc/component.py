"""The verifier of a service process: built from its settings at the first access token it
sees, then kept in the runtime (its keys are shared by every request of the process)."""

from __future__ import annotations

from typing import Any

from shared.oidc.config import OidcConfig
from shared.oidc.verifier import OidcVerifier
from shared.runtime import Runtime


def oidc_verifier(runtime: Runtime[Any]) -> OidcVerifier:
    try:
        return runtime.component(OidcVerifier)
    except LookupError:
        # No await between the lookup and provide(): two requests cannot build two verifiers.
        verifier = OidcVerifier(OidcConfig.from_settings(runtime.settings), clock=runtime.clock)
        runtime.provide(verifier)
        return verifier

"""Who may read which signals from the feature server: Feast permissions, one per feature service
and one per feature view, enforced when `signals serve` runs with OIDC (`SIGNALS_AUTH=oidc`).

A feature service is read by the holders of its roles: `SIGNALS_SERVICE_ROLES` as JSON,
`{"trust-safety": ["trust-and-safety"], …}`, and by default the role named as the service
(`playback`). A feature view — a request naming features rather than a service, a similarity
search — is read by the holders of a role of any service that includes it. A view no service
includes, and every write (push, materialize over HTTP), matches no permission: refused.

Exactly one permission matches each resource, because Feast's default decision over several
matching permissions is unanimous: an extra catch-all would refuse every reader.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from feast import FeatureService, FeatureView
from feast.permissions.action import AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy

ROLES_ENV = "SIGNALS_SERVICE_ROLES"
READ_ACTIONS = [AuthzedAction.DESCRIBE, AuthzedAction.READ_ONLINE, AuthzedAction.READ_OFFLINE]


def service_roles(
    services: list[str], environ: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """Each service's roles: the setting's, else the service's own name."""
    raw = (os.environ if environ is None else environ).get(ROLES_ENV) or "{}"
    try:
        configured = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ROLES_ENV} is not JSON ({exc}): {raw!r}") from None
    if not isinstance(configured, dict) or not all(
        isinstance(v, list) and all(isinstance(r, str) for r in v) for v in configured.values()
    ):
        raise ValueError(f'{ROLES_ENV} must map services to lists of roles: {{"playback": ["r"]}}')
    unknown = sorted(set(configured) - set(services))
    if unknown:
        raise ValueError(f"{ROLES_ENV} names services the repository lacks: {', '.join(unknown)}")
    return {name: list(configured.get(name, [name])) for name in services}


def read_permissions(services: Mapping[str, FeatureService]) -> list[Permission]:
    """The read permissions of the repository's feature services and the views they include."""
    roles = service_roles(list(services))
    by_view: dict[str, set[str]] = {}
    for name, service in services.items():
        for projection in service.feature_view_projections:
            by_view.setdefault(projection.name, set()).update(roles[name])
    granted = [(FeatureService, f"read-service-{n}", n, roles[n]) for n in services]
    granted += [(FeatureView, f"read-view-{v}", v, sorted(r)) for v, r in by_view.items()]
    return [
        Permission(
            name=permission,
            types=[kind],
            name_patterns=[f"^{re.escape(resource)}$"],
            actions=READ_ACTIONS,
            policy=RoleBasedPolicy(roles=allowed),
            tags={"roles": ",".join(allowed)},
        )
        for kind, permission, resource, allowed in granted
    ]

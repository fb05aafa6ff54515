"""The TLS trust rule every connector's HTTPS session follows.

When a CA bundle is configured (the sandbox's ``cert.pem``, or a connection's ``ca_bundle`` extra) the
session verifies against it and ignores the environment (``trust_env=False``): a machine-wide
``REQUESTS_CA_BUNDLE`` would otherwise override ``verify``. ``trust_env=False`` also ignores proxy
variables, so leave ``ca_bundle`` unset for a system reached through a proxy.
"""

from __future__ import annotations

import requests

from northstar.settings import Endpoint


def http_session(endpoint: Endpoint) -> requests.Session:
    session = requests.Session()
    if endpoint.ca_bundle:
        session.verify = str(endpoint.ca_bundle)
        session.trust_env = False  # else the machine-wide REQUESTS_CA_BUNDLE wins over verify
    return session

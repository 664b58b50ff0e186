"""Certificate status: revocation, hold/unhold, events (and CRL, OCSP)."""

"""GDPR in dispatch: erasure of a client's leads, objections (no more follow-ups) and the keyed
hashes of the leads' contacts that objections are matched against."""

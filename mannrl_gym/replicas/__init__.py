"""K independent experiments (seeds, or sweep points of keys that keep every shape) in one
process, stepped together by batched array code; see docs/replicas.md."""

# Shared by the bench scripts (sourced): the test scripts' helpers (podman_conf among them).
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

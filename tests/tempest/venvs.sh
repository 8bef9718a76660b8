# Sourced by tests/tempest/run and tests/tempest/keystone/run: one venv per OpenStack tool.
#
# Keystone and Tempest each get their own venv (their pins would clash with the project's),
# installed from PyPI under OpenStack's upper-constraints (tests/tempest/upper-constraints.txt)
# and reused while what they were built from is unchanged.
#   TEMPEST_VENVS   where the venvs live (<repo>/.cache/tempest-venvs)
#   PIP_CACHE_DIR   pip's download cache (~/.cache/pip), so a second machine-local build is fast
#   PYTHON          the interpreter to build them with (python3; Keystone 30 needs 3.11+)

tempest_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$tempest_dir/../.." && pwd)"
venvs_dir="${TEMPEST_VENVS:-$repo_root/.cache/tempest-venvs}"
constraints="$tempest_dir/upper-constraints.txt"

# ensure_venv NAME REQUIREMENT... : prints nothing, leaves the venv in $venvs_dir/NAME.
ensure_venv() {
  local name="$1"; shift
  local dir="$venvs_dir/$name" python="${PYTHON:-python3}" stamp
  stamp="$("$python" -c 'import sys; print(sys.version.split()[0])') $* $(sha256sum "$constraints" | cut -c1-16)"
  if [[ -x "$dir/bin/python" && "$(cat "$dir/.stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  echo "venv $name: installing $* (log: $dir.install.log)"
  rm -rf "$dir" && mkdir -p "$venvs_dir"
  if ! { "$python" -m venv "$dir" &&
         "$dir/bin/pip" install --quiet --disable-pip-version-check \
           --cache-dir "${PIP_CACHE_DIR:-$HOME/.cache/pip}" -c "$constraints" "$@"; } >"$dir.install.log" 2>&1; then
    grep -v "^WARNING: Location" "$dir.install.log" | tail -20
    echo "venv $name: install failed"
    return 1
  fi
  echo "$stamp" >"$dir/.stamp"
}

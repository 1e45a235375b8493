#!/usr/bin/env bash
# Onyxia init script (init.personalInit): prepares a JupyterLab service for a notebook.
#
#   init.sh NOTEBOOK [REF] REPOSITORY
#
# NOTEBOOK    path of the notebook inside the repository, e.g. notebooks/spark.ipynb
# REF         branch or tag to clone (default: main)
# REPOSITORY  GitHub "owner/name", or any git URL or local path
#
# Onyxia's onyxia-init.sh runs `curl $PERSONAL_INIT_SCRIPT | bash -s -- $ARGS` as the
# user onyxia, before JupyterLab starts and again at every restart; only ~/work
# survives a restart. So this script:
#   1. makes JupyterLab open NOTEBOOK, before anything can fail;
#   2. clones the repository into ~/work (an existing clone is kept as it is);
#   3. leaves the image's Python as it found it: what the book needs
#      (requirements/kernel.in, and the Makefile's PACKAGES as editable installs) and
#      the image lacks goes into a venv in ~/work that sees the image's packages,
#      installed with the image's own versions as constraints (pip freeze), never a
#      second PySpark (the image's comes from SPARK_HOME); a stamp makes the next
#      start skip the install while nothing changed;
#   4. registers that venv as the "python3" kernel, renamed to say so if the
#      install failed (the log then sits next to the clone).
# Everything happens inside main, called on the last line: a download cut short
# runs nothing, and no command can read the rest of the script from stdin.

main() {
  set -uo pipefail
  if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: init.sh NOTEBOOK [REF] REPOSITORY (got $# arguments: $*)" >&2
    return 2
  fi
  local notebook=$1 ref=main repository
  if [ $# -eq 3 ]; then ref=$2; repository=$3; else repository=$2; fi
  local workspace=${WORKSPACE:-$HOME/work} python=${PYTHON:-python3}
  local url
  case $repository in
    *://* | /* | ./* | ../*) url=$repository ;;
    *) url="https://github.com/${repository}.git" ;;
  esac
  local name
  name=$(basename "$url" .git)
  local target=$workspace/$name venv=$workspace/.venv-$name
  local log=$workspace/$name-installation.log

  mkdir -p "$workspace"
  open_in_jupyterlab "$name/$notebook"

  if [ -d "$target/.git" ]; then
    echo "init.sh: $target already exists, keeping it as it is (no clone, no reset)"
  elif ! git clone --quiet --depth 1 --branch "$ref" "$url" "$target"; then
    echo "init.sh: error: cannot clone $url at $ref" >&2
    open_in_jupyterlab ""
    return 1
  fi
  if [ ! -f "$target/$notebook" ]; then
    echo "init.sh: error: $notebook not found in $url at $ref" >&2
    open_in_jupyterlab "$name"
    return 1
  fi

  if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "init.sh: error: $python is missing or older than Python 3.11" >&2
    return 1
  fi
  local status=0
  if prepare_venv "$python" "$target" "$venv" >"$log" 2>&1; then
    grep '^init.sh: ' "$log"
    rm -f "$log"
    register_kernel "$venv/bin/python" "Python 3 (ipykernel)"
    echo "init.sh: ready, JupyterLab will open $name/$notebook"
  else
    status=1
    register_kernel "$venv/bin/python" \
      "Python 3 - installation incomplète, voir $name-installation.log"
    tail -n 20 "$log" >&2
    echo "init.sh: error: the installation failed, see $log" >&2
  fi
  return $status
}

# JupyterLab opens this path (relative to ~/work) at start.
open_in_jupyterlab() {
  local config=$HOME/.jupyter/jupyter_server_config.py
  mkdir -p "$HOME/.jupyter"
  touch "$config"
  sed -i '/# course-book default_url$/d' "$config"
  echo "c.LabApp.default_url = '/lab/tree/$1'  # course-book default_url" >>"$config"
  # Our "python3" kernel (user folder) wins, even where Python is a venv or conda
  # (there Jupyter would prefer the environment's folders).
  local prefer="import os; os.environ.setdefault('JUPYTER_PREFER_ENV_PATH', '0')"
  sed -i '/# course-book kernels$/d' "$config"
  echo "$prefer  # course-book kernels" >>"$config"
}

# The venv's key: what the install depends on. Same key, nothing to do.
venv_key() {
  local python=$1 target=$2
  {
    "$python" -c 'import sys; print(sys.version)'
    "$python" -m pip freeze --all 2>/dev/null
    echo "pyspark from image: $(pyspark_version "$python")"
    cat "$target"/requirements/*.in
    for package in $(book_packages "$target"); do
      cat "$target/$package/pyproject.toml"
    done
  } | sha256sum | cut -d' ' -f1
}

# The book's own packages, as the Makefile lists them (PACKAGES := ...).
book_packages() {
  sed -n 's/^PACKAGES := //p' "$1/Makefile"
}

pyspark_version() {
  "$1" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || echo none
}

prepare_venv() {
  local python=$1 target=$2 venv=$3
  local key
  key=$(venv_key "$python" "$target")
  local stamp=$venv/.course-key
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
    echo "init.sh: $venv is up to date, nothing to install"
    return 0
  fi
  rm -f "$venv/.course-key"
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    # No pip of its own: the image's pip drives the venv (pip --python).
    "$python" -m venv --without-pip "$venv" || return 1
  fi
  # The venv sees the image's packages after its own (like --system-site-packages,
  # which would miss them when the image's Python is itself a venv).
  local purelib
  purelib=$("$venv/bin/python" -c \
    'import sysconfig; print(sysconfig.get_path("purelib"))')
  "$python" -c 'import site
print(f"import site; list(map(site.addsitedir, {site.getsitepackages()!r}))")' \
    >"$purelib/course-image.pth" || return 1
  local work
  work=$(mktemp -d) || return 1
  "$python" -m pip freeze --all >"$work/freeze.txt" || return 1
  "$python" -m pip check >"$work/check-image.txt" 2>&1
  # image.txt: the image's versions, as constraints (pip installs only what lacks;
  # our lock's pins do not apply: kubernetes' needs a python-dateutil newer than the
  # one botocore accepts, for one); wanted.txt: the notebooks' direct requirements,
  # without PySpark (it comes with the image, never from pip).
  "$python" - "$work" "$target/requirements" <<'EOF' || return 1
import re
import sys
from pathlib import Path

work, requirements = Path(sys.argv[1]), Path(sys.argv[2])

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

pinned = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==[^ ;@]+")
image = [line for line in (work / "freeze.txt").read_text().splitlines()
         if pinned.match(line) and " @ " not in line]

def names(path):
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            yield from names(path.parent / line[3:].strip())
        elif line:
            yield re.split(r"[ <>=!~;\[]", line)[0]

wanted = dict.fromkeys(n for n in names(requirements / "kernel.in")
                       if norm(n) != "pyspark")
(work / "image.txt").write_text("\n".join(image) + "\n")
(work / "wanted.txt").write_text("\n".join(wanted) + "\n")
EOF
  echo "init.sh: PySpark in the image: $(pyspark_version "$python")"
  local pip=("$python" -m pip --python "$venv/bin/python" install) package
  for package in $(book_packages "$target"); do pip+=(-e "$target/$package"); done
  "${pip[@]}" -c "$work/image.txt" -r "$work/wanted.txt" || return 1
  # Nothing new for pip check: the image's own complaints, if any, are not ours.
  "$python" -m pip --python "$venv/bin/python" check >"$work/check-venv.txt" 2>&1
  if grep -vxF -f "$work/check-image.txt" "$work/check-venv.txt" \
    | grep -v '^No broken requirements found' >"$work/check-new.txt"; then
    echo "init.sh: pip check finds new problems:"
    cat "$work/check-new.txt"
    return 1
  fi
  rm -rf "$work"
  echo "$key" >"$venv/.course-key"
}

# The "python3" kernel of the user (it wins over the image's) runs the venv.
register_kernel() {
  local python=$1 display=$2
  local kernels=${XDG_DATA_HOME:-$HOME/.local/share}/jupyter/kernels/python3
  [ -x "$python" ] || python=$(command -v "${PYTHON:-python3}")
  mkdir -p "$kernels"
  cat >"$kernels/kernel.json" <<EOF
{
  "argv": ["$python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "$display",
  "language": "python",
  "metadata": {"debugger": true}
}
EOF
}

main "$@" </dev/null; exit

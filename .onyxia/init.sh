#!/usr/bin/env bash
# Onyxia init script (init.personalInit): prepares a JupyterLab service for one notebook.
#
#   init.sh NOTEBOOK [REF] [REPOSITORY]
#
# NOTEBOOK    path of the notebook inside the repository, e.g. notebooks/industrialisation.ipynb
# REF         branch or tag to clone (default: main)
# REPOSITORY  GitHub "owner/name", or any git URL or local path
#
# It clones the repository (shallow) into $WORKSPACE (default: ~/work), installs the
# notebooks' pinned requirements and the fil-rouge package, and makes JupyterLab open
# NOTEBOOK at start. An existing clone is left untouched, so a relaunch loses no work.
set -euo pipefail

notebook=${1:?usage: init.sh NOTEBOOK [REF] [REPOSITORY]}
ref=${2:-main}
repository=${3:?usage: init.sh NOTEBOOK [REF] [REPOSITORY]}
workspace=${WORKSPACE:-$HOME/work}
python=${PYTHON:-python3}

case $repository in
  *://* | /* | ./* | ../*) url=$repository ;;
  *) url="https://github.com/${repository}.git" ;;
esac
name=$(basename "$url" .git)
target="$workspace/$name"

mkdir -p "$workspace"
if [ -d "$target/.git" ]; then
  echo "init.sh: $target already exists, keeping it as it is (no clone, no reset)"
else
  git clone --quiet --depth 1 --branch "$ref" "$url" "$target"
fi

if [ ! -f "$target/$notebook" ]; then
  echo "init.sh: error: $notebook not found in $url at $ref" >&2
  exit 1
fi

(cd "$target" && "$python" -m pip install --quiet -r requirements/kernel.txt -e examples/resilia)

mkdir -p "$HOME/.jupyter"
config="$HOME/.jupyter/jupyter_server_config.py"
touch "$config"
# JupyterLab's root is the workspace: open the notebook relative to it.
sed -i '/# course-book default_url$/d' "$config"
echo "c.LabApp.default_url = '/lab/tree/$name/$notebook'  # course-book default_url" >> "$config"
echo "init.sh: ready, JupyterLab will open $name/$notebook"

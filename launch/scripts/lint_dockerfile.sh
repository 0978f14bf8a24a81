#!/usr/bin/env bash
# Lints docker/Dockerfile without a Docker engine (CI has none). hadolint is not packaged for
# Debian 12, so this checks what breaks our image builds in practice:
#   - the FROM image is an NVIDIA CUDA 13 devel image (nvidia/cuda:13.x[.y]-[cudnn-]devel-ubuntu*);
#     a FROM ${BASE} is checked with the default of the ARG BASE=... before it (the GPU image;
#     other bases, the CPU variant, are --build-arg BASE=... and built by image_check.sh);
#   - every COPY/ADD source exists in the build context (the repository root);
#   - every repository script a RUN executes (a path ending in .sh or .py) exists and is
#     executable, on disk and, when tracked, in git's index (a clone gets git's mode);
#   - every package `apt-get install` names is a known package name: NVIDIA-repository packages
#     from the allow-list below, everything else through this Debian machine's `apt-cache show`
#     (a proxy for Ubuntu: the names we use are the same in Debian 12 and Ubuntu 24.04);
#   - the image installs every package launch/scripts/install_deps.sh checks for, so install_deps.sh
#     needs no apt-get of its own inside the image.
# Prints one line per problem and exits 1 if there is any (2 for bad usage).
# Usage: launch/scripts/lint_dockerfile.sh [DOCKERFILE [CONTEXT_DIR]]
#   (defaults: docker/Dockerfile, and the repository root as the build context)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dockerfile=${1:-$here/docker/Dockerfile}
context=${2:-$here}
install_deps=$here/launch/scripts/install_deps.sh

# Packages from NVIDIA's CUDA apt repository (preconfigured in the nvidia/cuda images), which a
# Debian machine cannot know. Add a name here only after checking it exists in that repository
# (https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/).
nvidia_repo_packages=(libnccl2 libnccl-dev libcudnn9-cuda-13 libcudnn9-dev-cuda-13
                      cuda-toolkit-13-0 cuda-libraries-dev-13-0 cuda-nvcc-13-0)
# Ubuntu 24.04 package names that Debian 12 lacks (none used today); same rule as above.
ubuntu_only_packages=()

problems=0
problem() { echo "lint_dockerfile: $*" >&2; problems=$((problems + 1)); }

[ -f "$dockerfile" ] || { echo "lint_dockerfile: no such Dockerfile: $dockerfile" >&2; exit 2; }
[ -d "$context" ] || { echo "lint_dockerfile: no such build context: $context" >&2; exit 2; }
rel=${dockerfile#"$here"/}

# One logical instruction per line, "LINE<TAB>TEXT": comment lines dropped (Docker drops them
# even inside a continuation), backslash continuations joined.
instructions=$(awk '
  /^[[:space:]]*#/ { next }
  {
    line = $0; sub(/\r$/, "", line)
    if (text == "") { start = NR; if (line ~ /^[[:space:]]*$/) next }
    if (line ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, " ", line); text = text line; next }
    text = text line; print start "\t" text; text = ""
  }
  END { if (text != "") print start "\t" text }' "$dockerfile")

in_list() { local x=$1; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

stages=()            # FROM ... AS name: later FROM/COPY --from may refer to them
declare -A arg_default=()  # ARG NAME=VALUE before the first FROM: what FROM ${NAME} means by default
copy_dest=""         # where `COPY . DEST` put the repository (absolute script paths under it)
scripts=()           # "LINE<TAB>path" of repository scripts that RUN executes
packages=()          # "LINE<TAB>name" of packages that apt-get installs
from_seen=0

while IFS=$'\t' read -r lineno text; do
  read -r -a words <<<"$text"
  ((${#words[@]})) || continue
  keyword=${words[0]^^}
  args=("${words[@]:1}")
  where="$rel:$lineno"
  case "$keyword" in
    ARG)
      if ((!from_seen)) && [[ ${args[0]:-} == *=* ]]; then
        v=${args[0]#*=}; v=${v#\"}; v=${v%\"}
        arg_default[${args[0]%%=*}]=$v
      fi
      ;;
    FROM)
      from_seen=1
      image=""
      for w in "${args[@]}"; do [[ $w == --* ]] || { image=$w; break; }; done
      if [[ $image =~ ^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$ ]]; then
        v=${BASH_REMATCH[1]}
        if [ -z "${arg_default[$v]:-}" ]; then
          problem "$where: FROM '$image' has no default (ARG $v=IMAGE before the FROM)"; continue
        fi
        image=${arg_default[$v]}
      fi
      if [[ ${#args[@]} -ge 3 && ${args[-2]^^} == AS ]]; then stages+=("${args[-1]}"); fi
      in_list "$image" "${stages[@]}" && continue
      if ! [[ $image =~ ^(docker\.io/)?nvidia/cuda:13\.[0-9]+(\.[0-9]+)?-(cudnn[0-9]*-)?devel-ubuntu[0-9.]+$ ]]; then
        problem "$where: FROM '$image' is not a CUDA 13 devel image (nvidia/cuda:13.x-[cudnn-]devel-ubuntuYY.MM)"
      fi
      ;;
    COPY|ADD)
      srcs=()
      skip=0
      if [[ ${args[0]:-} == "["* ]]; then
        # JSON form: ["src", ..., "dest"]
        json=${text#*[}; json=${json%]*}
        IFS=',' read -r -a srcs <<<"$json"
        for i in "${!srcs[@]}"; do s=${srcs[$i]}; s=${s//\"/}; s=${s// /}; srcs[i]=$s; done
      else
        for w in "${args[@]}"; do
          [[ $w == --from=* ]] && skip=1
          [[ $w == --* ]] || srcs+=("$w")
        done
      fi
      ((skip)) && continue
      if ((${#srcs[@]} < 2)); then problem "$where: $keyword needs a source and a destination"; continue; fi
      dest=${srcs[-1]}
      unset 'srcs[-1]'
      for s in "${srcs[@]}"; do
        [[ $s =~ ^https?:// ]] && continue
        [ "$s" = . ] && copy_dest=${dest%/}
        # shellcheck disable=SC2206  # the glob is meant to expand, as Docker expands it
        matches=( "$context"/$s )
        [ -e "${matches[0]}" ] || problem "$where: $keyword source '$s' does not exist in $context"
      done
      ;;
    WORKDIR)
      [ -n "$copy_dest" ] || copy_dest=${args[0]%/}
      ;;
    RUN)
      # Split the shell command into simple commands; look at each word.
      segments=$(sed -e 's/&&/\n/g; s/||/\n/g; s/[;|(){}]/\n/g' <<<"${args[*]}")
      while read -r -a seg; do
        for i in "${!seg[@]}"; do
          w=${seg[$i]}
          if [[ $w =~ ^[A-Za-z0-9_./-]+\.(sh|py)$ ]]; then
            if [[ $w == /* ]]; then
              [[ -n $copy_dest && $w == "$copy_dest"/* ]] || continue   # a system path
              w=${w#"$copy_dest"/}
            fi
            scripts+=("$lineno"$'\t'"${w#./}")
          fi
        done
        # apt-get|apt [options] install [options] NAME...
        for i in "${!seg[@]}"; do
          [[ ${seg[$i]} == apt-get || ${seg[$i]} == apt ]] || continue
          install=0
          for w in "${seg[@]:$((i + 1))}"; do
            if ((!install)); then [ "$w" = install ] && install=1; continue; fi
            [[ $w == -* || $w =~ ^[0-9]*[\<\>] ]] && continue
            packages+=("$lineno"$'\t'"$w")
          done
          break
        done
      done <<<"$segments"
      ;;
  esac
done <<<"$instructions"

((from_seen)) || problem "$rel: no FROM instruction"

for entry in "${scripts[@]}"; do
  lineno=${entry%%$'\t'*}; path=${entry#*$'\t'}
  if [ ! -f "$context/$path" ]; then
    problem "$rel:$lineno: RUN script '$path' does not exist in $context"
  elif [ ! -x "$context/$path" ]; then
    problem "$rel:$lineno: RUN script '$path' is not executable (chmod +x)"
  else
    mode=$(git -C "$context" ls-files -s -- "$path" 2>/dev/null | cut -d' ' -f1 || true)
    if [ -n "$mode" ] && [ "$mode" != 100755 ]; then
      problem "$rel:$lineno: RUN script '$path' is mode $mode in git's index (git update-index --chmod=+x)"
    fi
  fi
done

# Package names. apt-cache needs this machine's package lists (apt-get update).
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  problem "no apt package lists on this machine (run apt-get update): cannot check package names"
else
  installed=()
  for entry in "${packages[@]}"; do
    name=${entry#*$'\t'}; name=${name%%=*}; name=${name%%:*}   # pkg=version, pkg:arch
    installed+=("$name")
  done
  # One apt-cache call for all names: the ones it prints are known (virtual names print nothing).
  known=()
  if ((${#installed[@]})); then
    mapfile -t known < <(apt-cache show --no-all-versions "${installed[@]}" 2>/dev/null |
                         awk '/^Package:/ { print $2 }')
  fi
  for entry in "${packages[@]}"; do
    lineno=${entry%%$'\t'*}; name=${entry#*$'\t'}; name=${name%%=*}; name=${name%%:*}
    if [[ $name == *'$'* ]]; then
      problem "$rel:$lineno: apt package '$name' is a variable: cannot check it, name it literally"
    elif ! in_list "$name" "${nvidia_repo_packages[@]}" "${ubuntu_only_packages[@]}" "${known[@]}"; then
      problem "$rel:$lineno: apt package '$name' is unknown (not in apt-cache, not in the NVIDIA allow-list)"
    fi
  done
  # install_deps.sh's list: debs=(a b
  #                                c d)
  deps=$(awk '/^debs=\(/ { on = 1; sub(/^debs=\(/, "") } on { t = $0; sub(/\).*/, "", t); print t; if (/\)/) exit }' "$install_deps")
  for name in $deps; do
    in_list "$name" "${installed[@]}" ||
      problem "$rel: does not install '$name', which launch/scripts/install_deps.sh requires (it would run apt-get in the image)"
  done
fi

if ((problems)); then
  echo "lint_dockerfile: $problems problem(s) in $rel" >&2
  exit 1
fi
echo "lint_dockerfile: $rel OK (${#packages[@]} packages, ${#scripts[@]} scripts checked)"

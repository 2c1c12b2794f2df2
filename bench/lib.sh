# Shared by the scripts in bench/: timing, medians, ratios, and the
# environment every run uses. Source it; do not run it.
export META_OPERATOR="Bench <bench@example.com>" GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com GIT_CONFIG_NOSYSTEM=1

now_ns() { date +%s%N; }
elapsed_ms() { echo "scale=2; ($2 - $1) / 1000000" | bc; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }

# build puts meta and mkrepo in $out.
build() {
  mkdir -p "$out"
  go build -o "$out/meta" ./cmd/meta
  go build -o "$out/mkrepo" ./bench/mkrepo
}

# fixture DIR APPS PER_APP builds a log once and keeps it.
fixture() {
  [ -f "$1/meta.yaml" ] || "$out/mkrepo" "$1" "$2" "$3"
}

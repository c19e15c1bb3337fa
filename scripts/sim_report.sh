#!/usr/bin/env bash
# A report from `meshmap sim` CSVs: one PNG per measure (every CSV a line,
# drawn with gnuplot) and a markdown file that compares the runs (the last
# row of each, and the plots).
#   scripts/sim_report.sh OUTDIR RUN.csv [RUN.csv ...]
# Each run is named after its file (overlap.csv -> "overlap"). Measures
# that are 0 in every row of every run (no attack, say) are left out.
# Exit 2 on a bad command line or a file that is not a sim CSV.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUTDIR RUN.csv [RUN.csv ...]" >&2
  exit 2
fi
out=$1
shift
command -v gnuplot >/dev/null || { echo "sim_report: gnuplot not found (Debian: gnuplot-nox; scripts/deps.sh installs it)" >&2; exit 1; }
for f in "$@"; do
  [ -r "$f" ] || { echo "sim_report: $f: cannot read" >&2; exit 2; }
  head -1 "$f" | grep -q '^t_s,up,links,' || { echo "sim_report: $f: not a meshmap sim CSV (no t_s,up,links header)" >&2; exit 2; }
  [ "$(wc -l <"$f")" -ge 2 ] || { echo "sim_report: $f: no rows" >&2; exit 2; }
done
mkdir -p "$out"

# measure  title  y label
measures=(
  "disc_mean|Discovery (mean over the observers)|fraction of the true links"
  "disc_min|Discovery (the worst observer)|fraction of the true links"
  "exact|Maps exactly true|observers"
  "frames_node_s|Gossip frames received|frames / node / s"
  "bytes_node_s|Gossip bytes received|bytes / node / s"
  "deg_mean|Mean degree|links"
  "largest|Largest component of the true graph|nodes"
  "path_mean|Mean shortest path|hops"
  "clustering|Clustering coefficient|mean local"
  "map_bytes_peer|Map memory per peer|bytes"
  "observers_split|Observers whose analysis sees a split|observers"
  "observers_split_groups|Observers whose analysis sees two groups of linked peers or more|observers"
  "up|Nodes up|nodes"
  "map_dead|Live records of nodes that are down, in the maps|fraction"
  "map_phantom|Confirmed links of the maps that are not true|fraction"
  "victim_att_share|Links of the victims held by attackers|fraction"
  "eclipsed|Honest nodes eclipsed|nodes"
  "map_sybil_share|Attackers among the records of the maps|fraction"
)

name() { basename "$1" .csv; }
# colnum FILE NAME: the column's number, empty if absent
colnum() { head -1 "$1" | tr ',' '\n' | grep -nx "$2" | cut -d: -f1; }
nonzero() { # any nonzero value of column NAME in any file
  local m=$1 f c
  shift
  for f in "$@"; do
    c=$(colnum "$f" "$m")
    [ -n "$c" ] || continue
    awk -F, -v c="$c" 'NR > 1 && $c + 0 != 0 { found = 1; exit } END { exit !found }' "$f" && return 0
  done
  return 1
}

report=$out/report.md
{
  echo "# meshmap sim report"
  echo
  echo "Runs: $(for f in "$@"; do printf '%s ' "\`$(name "$f")\`"; done)"
  echo
  echo "## At the end of each run"
  echo
  echo "| run | t (s) | up | links | largest | degree | discovery | exact | frames/node/s | path | clustering |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for f in "$@"; do
    awk -F, -v run="$(name "$f")" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
      { for (k in c) v[k] = $(c[k]) }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", run, v["t_s"],
        v["up"], v["links"], v["largest"], v["deg_mean"], v["disc_mean"], v["exact"],
        v["frames_node_s"], v["path_mean"], v["clustering"] }' "$f"
  done
  echo
  echo "## Over time"
  echo
} >"$report"

for entry in "${measures[@]}"; do
  IFS='|' read -r m title ylabel <<<"$entry"
  nonzero "$m" "$@" || continue
  plot="" sep=""
  for f in "$@"; do
    c=$(colnum "$f" "$m")
    [ -n "$c" ] || continue
    plot+="$sep'$f' using 1:$c with linespoints title '$(name "$f")'"
    sep=", "
  done
  # (a flat line makes gnuplot warn of an empty y range: not an error)
  gnuplot 2> >(grep -v '^Warning: empty y range' >&2) <<EOF
set terminal png size 900,480
set output '$out/$m.png'
set datafile separator ','
set title "$title"
set xlabel 'simulated time (s)'
set ylabel "$ylabel"
set key outside right
set grid
plot $plot
EOF
  {
    echo "### $title"
    echo
    echo "![$title]($m.png)"
    echo
  } >>"$report"
done
echo "sim_report: $report and $(find "$out" -name '*.png' | wc -l) plots"

# Sourced by bench/single_node.sh and bench/cluster.sh: write latency from
# redis-benchmark's own percentile distribution.
#
#   latency_run PORT N TEST [redis-benchmark args...]
#     runs redis-benchmark -c 50 -r 100000 -n N -t TEST against PORT and prints
#     "rps p50 p99 p99.9 max" (milliseconds), each percentile the latency
#     below which that share of the N requests completed.
latency_run() {
  local port=$1 n=$2 test=$3
  shift 3
  redis-benchmark -p "$port" -c 50 -r 100000 -n "$n" -t "$test" "$@" 2>/dev/null |
    tr '\r' '\n' | awk -v n="$n" '
      /^Latency by percentile distribution/ { inp = 1; next }
      /^Cumulative distribution/ { inp = 0 }
      inp && /cumulative count/ {
        # "99.902% <= 3.143 milliseconds (cumulative count 19981)"
        lat = $3; cnt = $NF; sub(/\)/, "", cnt); cnt += 0
        if (p50 == "" && cnt >= 0.5 * n) p50 = lat
        if (p99 == "" && cnt >= 0.99 * n) p99 = lat
        if (p999 == "" && cnt >= 0.999 * n) p999 = lat
        max = lat
      }
      /throughput summary:/ { rps = $3 }
      END { printf "%s %s %s %s %s\n", rps, p50, p99, p999, max }'
}

# latency_header, then latency_row NAME "rps p50 p99 p99.9 max" per server.
latency_header() {
  printf '%-30s %10s %8s %8s %8s %8s\n' "$1" "req/s" "p50 ms" "p99 ms" "p99.9 ms" "max ms"
}
latency_row() {
  local name=$1 rps p50 p99 p999 max
  read -r rps p50 p99 p999 max <<<"$2"
  printf '%-30s %10.0f %8s %8s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$p999" "$max"
}

#!/usr/bin/env bash
# bench/compare.sh: egressd beside Squid, the goproxy reference and a splice
# relay (the floor), on one machine, in interleaved rounds; writes
# bench/RESULTS.md. Called by `make bench`. See bench/README.md.
#
# Every proxy runs pinned to CPU 0 and the load generator (with its origin)
# to CPU 1. Each proxy is started fresh for each round. All traffic stays on
# 127.0.0.1. Every process this script starts is killed on exit.
#
# Knobs (environment): BENCH_ROUNDS (3; idle runs in round 1 only), BENCH_DURATION (3s per run),
# BENCH_TUNNELS (10000), BENCH_INSTALL_SQUID (1: apt-get install squid when
# missing and running as root), BENCH_PORT_BASE (23100), BENCH_OUT (bench/out).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local
# A proxy inherits these; none of the proxies may chain anywhere.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy

OUT=${BENCH_OUT:-bench/out}
ROUNDS=${BENCH_ROUNDS:-3}
DUR=${BENCH_DURATION:-3s}
TUNNELS=${BENCH_TUNNELS:-10000}
INSTALL_SQUID=${BENCH_INSTALL_SQUID:-1}
BASE=${BENCH_PORT_BASE:-23100}
LINK_ID=1001
START=$(date +%s)

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.jsonl
CMDS=$OUT/commands.txt
NOTES=$OUT/notes.txt
: >"$RESULTS" >"$CMDS" >"$NOTES"

PROXY_PID=""
LOAD_PID=""
cleanup() {
	if [[ -n $LOAD_PID ]]; then
		kill "$LOAD_PID" 2>/dev/null || true
	fi
	if [[ -n $PROXY_PID ]]; then
		kill "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() {
	echo "compare: $*" >&2
	echo "$*" >>"$NOTES"
}

# --- descriptors: the idle mode needs two per tunnel in the proxy, and
# two per tunnel in the load generator (client side and origin side).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
if [[ $FDS != unlimited ]] && ((TUNNELS * 2 + 2000 > FDS)); then
	TUNNELS=$(((FDS - 2000) / 2))
	note "open-file limit is $FDS: idle mode holds $TUNNELS tunnels instead of ${BENCH_TUNNELS:-10000}"
fi
# The relay and goproxy copy with io.Copy, which splices through a kernel
# pipe that each direction holds for the tunnel's whole life: six
# descriptors per tunnel instead of two, so they get fewer idle tunnels (the
# figure is per tunnel either way). egressd holds no pipe while idle.
SPLICE_TUNNELS=$TUNNELS
if [[ $FDS != unlimited ]] && ((TUNNELS * 6 + 2000 > FDS)); then
	SPLICE_TUNNELS=$(((FDS - 2000) / 6))
	note "relay and goproxy: idle mode holds $SPLICE_TUNNELS tunnels, since io.Copy's splice pins a pipe (two descriptors) per direction for each tunnel's life: six descriptors per tunnel"
fi

# --- builds
echo "compare: building" >&2
go build -o "$OUT/egressd-bench" ./bench/cmd/egressd-bench
BENCH=$OUT/egressd-bench
HAVE_EGRESSD=0
if go build -o "$OUT/egressd" ./cmd/egressd 2>"$OUT/egressd-build.log"; then
	HAVE_EGRESSD=1
else
	note "egressd: skipped, it does not build (go build ./cmd/egressd; see bench/out/egressd-build.log)"
fi

# --- Squid
HAVE_SQUID=0
HAVE_SQUID_BUMP=0
# squid-openssl is Debian's Squid built with OpenSSL and the certificate
# generator that ssl_bump needs; it provides the same `squid` binary.
squid_bumps() { squid -v 2>/dev/null | grep -q -- '--enable-ssl-crtd'; }
if { ! command -v squid >/dev/null 2>&1 || ! squid_bumps; } && [[ $INSTALL_SQUID == 1 ]]; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "compare: installing squid-openssl" >&2
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squid-openssl; } >"$OUT/squid-install.log" 2>&1; then
			note "squid: apt-get install squid-openssl failed (see bench/out/squid-install.log)"
		fi
		# The package starts a system squid on 3128; ours uses its own port.
		(systemctl stop squid || service squid stop) >/dev/null 2>&1 || true
	else
		note "squid: not installed, and installing needs root and apt-get"
	fi
fi
if command -v squid >/dev/null 2>&1; then
	HAVE_SQUID=1
	note "squid: $(squid -v | head -n1)"
	# The package starts a system squid on 3128; it is not ours, leave it alone
	# (our squid uses its own port, pid file and logs).
elif [[ $INSTALL_SQUID != 1 ]]; then
	note "squid: skipped (BENCH_INSTALL_SQUID=$INSTALL_SQUID and squid is not installed)"
fi
if ((HAVE_SQUID)) && squid_bumps && [[ -x /usr/lib/squid/security_file_certgen ]]; then
	HAVE_SQUID_BUMP=1
	note "squid mitm: ssl_bump peek+bump with security_file_certgen and a 16 MB in-memory certificate cache; the certificate helper runs as separate processes whose CPU is not counted (so Squid's cold figure flatters it); Squid 5 checks the upstream name against DNS names only, so its domain-mismatch error is allowed for the IP-literal origin while the chain is still verified"
else
	note "squid mitm (ssl_bump) not measured: it needs squid-openssl (security_file_certgen); the mitm rows compare egressd with goproxy only"
fi

# --- pinning
PIN_PROXY=()
PIN_LOAD=()
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
	PIN_PROXY=(taskset -c 0)
	PIN_LOAD=(taskset -c 1)
else
	note "no taskset or fewer than 2 CPUs: nothing is pinned, per-CPU figures still hold"
fi

# --- ports and certificates
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $(seq "$BASE" $((BASE + 7))); do
	if ! port_free "$p"; then
		echo "compare: port 127.0.0.1:$p is in use; set BENCH_PORT_BASE" >&2
		exit 1
	fi
done
ORIGIN=127.0.0.1:$BASE
EGRESSD_ADDR=127.0.0.1:$((BASE + 1))
EGRESSD_ADMIN=127.0.0.1:$((BASE + 2))
SQUID_ADDR=127.0.0.1:$((BASE + 3))
RELAY_ADDR=127.0.0.1:$((BASE + 4))
GOPROXY_ADDR=127.0.0.1:$((BASE + 5))

"$BENCH" gencert --cert "$OUT/origin.pem" --key "$OUT/origin-key.pem"
"$BENCH" gencert --ca --cert "$OUT/mitm-ca.pem" --key "$OUT/mitm-ca-key.pem"

sed -e "s/127.0.0.1:3128/$EGRESSD_ADDR/" -e "s/127.0.0.1:9090/$EGRESSD_ADMIN/" bench/egressd.yaml >"$OUT/egressd.yaml"
# The inspecting variant: every CONNECT is bumped with the bench CA, and the
# origin is verified against its own certificate.
{
	cat "$OUT/egressd.yaml"
	cat <<EOF
    tls_inspection:
      mode: bump
tls_inspection:
  ca_cert: $OUT/mitm-ca.pem
  ca_key: $OUT/mitm-ca-key.pem
  upstream_roots: ["$OUT/origin.pem"]
EOF
} >"$OUT/egressd-mitm.yaml"

SQDIR=$OUT/squid
mkdir -p "$SQDIR"
chmod 777 "$SQDIR" # squid drops privileges to its own user before logging
cat >"$SQDIR/squid.conf" <<EOF
# Written by bench/compare.sh: a forward proxy for loopback clients that
# send a PROXY header, as Azure PLS does, with no caching.
http_port $SQUID_ADDR require-proxy-header
acl bench_src src 127.0.0.0/8
proxy_protocol_access allow bench_src
proxy_protocol_access deny all
http_access allow bench_src
http_access deny all
cache deny all
access_log stdio:/dev/null
cache_log $SQDIR/cache.log
pid_filename $SQDIR/squid.pid
coredump_dir $SQDIR
workers 1
max_filedescriptors 65536
visible_hostname egressd-bench
# Any lookup stays on this machine; the bench uses IP literals only.
dns_nameservers 127.0.0.1
pinger_enable off
shutdown_lifetime 1 seconds
EOF

# The same Squid with TLS inspection (ssl_bump) for the mitm mode.
if ((HAVE_SQUID_BUMP)); then
	rm -rf "$SQDIR/ssl_db"
	/usr/lib/squid/security_file_certgen -c -s "$SQDIR/ssl_db" -M 16MB >/dev/null
	chmod -R 777 "$SQDIR/ssl_db"
	sed -e "s#^http_port .*#http_port $SQUID_ADDR require-proxy-header ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert=$OUT/mitm-ca.pem tls-key=$OUT/mitm-ca-key.pem#" \
		"$SQDIR/squid.conf" >"$SQDIR/squid-mitm.conf"
	cat >>"$SQDIR/squid-mitm.conf" <<EOF
sslcrtd_program /usr/lib/squid/security_file_certgen -s $SQDIR/ssl_db -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=$OUT/origin.pem
acl ip_san_mismatch ssl_error SQUID_X509_V_ERR_DOMAIN_MISMATCH
sslproxy_cert_error allow ip_san_mismatch
sslproxy_cert_error deny all
EOF
fi

# --- proxies
wait_port() { # addr seconds
	local host=${1%:*} port=${1##*:} i
	for ((i = 0; i < $2 * 10; i++)); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
		if ! kill -0 "$PROXY_PID" 2>/dev/null; then return 1; fi
		sleep 0.1
	done
	return 1
}

# start NAME [mitm]: sets PROXY_PID, PROXY_ADDR and RELAY_FLAG.
start() {
	local name=$1 variant=${2:-}
	RELAY_FLAG=()
	case $name in
	egressd)
		local conf=$OUT/egressd.yaml
		[[ $variant == mitm ]] && conf=$OUT/egressd-mitm.yaml
		"${PIN_PROXY[@]}" "$OUT/egressd" serve -config "$conf" >>"$OUT/egressd.log" 2>&1 &
		PROXY_ADDR=$EGRESSD_ADDR
		;;
	squid)
		local conf=$SQDIR/squid.conf
		[[ $variant == mitm ]] && conf=$SQDIR/squid-mitm.conf
		"${PIN_PROXY[@]}" squid -N -f "$conf" >>"$SQDIR/stderr.log" 2>&1 &
		PROXY_ADDR=$SQUID_ADDR
		;;
	relay)
		"${PIN_PROXY[@]}" "$BENCH" relay --listen "$RELAY_ADDR" --origin "$ORIGIN" >>"$OUT/relay.log" 2>&1 &
		PROXY_ADDR=$RELAY_ADDR
		RELAY_FLAG=(--relay)
		;;
	goproxy)
		local extra=()
		[[ $variant == mitm ]] && extra=(--mitm-ca-cert "$OUT/mitm-ca.pem" --mitm-ca-key "$OUT/mitm-ca-key.pem" --upstream-ca "$OUT/origin.pem")
		"${PIN_PROXY[@]}" "$BENCH" goproxy --listen "$GOPROXY_ADDR" "${extra[@]}" >>"$OUT/goproxy.log" 2>&1 &
		PROXY_ADDR=$GOPROXY_ADDR
		;;
	esac
	PROXY_PID=$!
	if ! wait_port "$PROXY_ADDR" 15; then
		stop
		return 1
	fi
}

stop() {
	if [[ -n $PROXY_PID ]]; then
		kill "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
		PROXY_PID=""
	fi
	sleep 0.5 # let TIME_WAIT and the kernel settle between proxies
}

mode_args() { # mode [proxy name]
	local tunnels=$TUNNELS
	[[ ${2:-} == relay || ${2:-} == goproxy ]] && tunnels=$SPLICE_TUNNELS
	case $1 in
	http-rps) echo "--concurrency 32 --duration $DUR" ;;
	connect-rate) echo "--concurrency 16 --duration $DUR" ;;
	connect-throughput) echo "--concurrency 4 --size 16MiB --duration $DUR" ;;
	http-throughput) echo "--concurrency 4 --size 16MiB --duration $DUR" ;;
	idle) echo "--concurrency 64 --tunnels $tunnels --hold 2s --duration 30s" ;;
	mitm) echo "--concurrency 16 --duration $DUR --mitm-ca $OUT/mitm-ca.pem --mitm-cold-hosts 64" ;;
	# 16 streams on one inspected tunnel, then 16 inspected keep-alive
	# HTTP/1.1 tunnels, in one run (issue 17).
	mitm-h2) echo "--concurrency 16 --duration $DUR --mitm-ca $OUT/mitm-ca.pem" ;;
	esac
}

declare -A LOGGED
measure() { # name mode round
	local name=$1 mode=$2 round=$3
	# shellcheck disable=SC2207
	local args=($(mode_args "$mode" "$name"))
	# egressd's Go runtime gauges say what an idle tunnel's memory is made of.
	[[ $name == egressd && $mode == idle ]] && args+=(--proxy-metrics "http://$EGRESSD_ADMIN/metrics")
	local cmd=("${PIN_LOAD[@]}" "$BENCH" run --json --name "$name" --mode "$mode" --proxy "$PROXY_ADDR" "${RELAY_FLAG[@]}"
		--proxy-pid "$PROXY_PID" --proxy-protocol v2 --link-id "$LINK_ID"
		--origin "$ORIGIN" --origin-cert "$OUT/origin.pem" --origin-key "$OUT/origin-key.pem" "${args[@]}")
	if [[ -z ${LOGGED[$name/$mode]:-} ]]; then
		LOGGED[$name/$mode]=1
		echo "${cmd[*]} --proxy-pid PID" | sed -e "s#$OUT#bench/out#g" -e 's/--proxy-pid [0-9]* //' >>"$CMDS"
	fi
	echo "compare: round $round: $mode against $name" >&2
	local rc=0
	# In the background, so that a signal to this script is handled at once
	# and the trap can kill the load generator too.
	"${cmd[@]}" >>"$RESULTS" 2>>"$OUT/bench.log" &
	LOAD_PID=$!
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=""
	if ((rc == 2)); then
		note "round $round $mode $name: the load generator refused to run (see bench/out/bench.log)"
	fi
}

PROXIES=()
((HAVE_EGRESSD)) && PROXIES+=(egressd)
((HAVE_SQUID)) && PROXIES+=(squid)
PROXIES+=(relay goproxy)
# idle last: closing thousands of tunnels leaves the proxy (and the
# kernel's TIME_WAIT table) busy for a while, which would spoil the next mode.
# Its RSS delta is sampled just before the tunnels open, so earlier modes do
# not hide its growth.
MODES=(http-rps connect-rate connect-throughput http-throughput idle)
{
	echo "# $(date -u +%FT%TZ) rounds=$ROUNDS duration=$DUR tunnels=$TUNNELS proxies pinned with: ${PIN_PROXY[*]:-none}, load with: ${PIN_LOAD[*]:-none}"
	echo "bash bench/compare.sh   # which ran, per round and proxy:"
	echo "${PIN_PROXY[*]} bench/out/egressd serve -config bench/out/egressd.yaml"
	echo "${PIN_PROXY[*]} squid -N -f bench/out/squid/squid.conf"
	echo "${PIN_PROXY[*]} bench/out/egressd-bench relay --listen $RELAY_ADDR --origin $ORIGIN"
	echo "${PIN_PROXY[*]} bench/out/egressd-bench goproxy --listen $GOPROXY_ADDR"
} >>"$CMDS"

for ((round = 1; round <= ROUNDS; round++)); do
	n=${#PROXIES[@]}
	for ((i = 0; i < n; i++)); do
		# Rotate the order each round so no proxy always runs first.
		name=${PROXIES[$(((i + round - 1) % n))]}
		if ! start "$name"; then
			note "round $round: $name could not start (see bench/out/*.log): skipped"
			continue
		fi
		for mode in "${MODES[@]}"; do
			# Memory per idle tunnel is a level, not a rate: one round is
			# enough, and opening thousands of tunnels per proxy per round
			# would take most of the 10-minute budget.
			if [[ $mode == idle ]] && ((round > 1)); then
				continue
			fi
			measure "$name" "$mode" "$round"
		done
		stop
	done
	# TLS inspection: egressd with tls_inspection, and goproxy with the same CA.
	for name in egressd squid goproxy; do
		[[ $name == egressd ]] && ((!HAVE_EGRESSD)) && continue
		[[ $name == squid ]] && ((!HAVE_SQUID_BUMP)) && continue
		if ! start "$name" mitm; then
			note "round $round: $name with TLS inspection could not start: mitm skipped"
			continue
		fi
		measure "$name" mitm "$round"
		measure "$name" mitm-h2 "$round"
		stop
	done
done

# --- CPU profiles of egressd, outside the measured rounds (profiling costs CPU).
if ((HAVE_EGRESSD)); then
	for mode in http-rps connect-rate connect-throughput http-throughput; do
		if ! start egressd; then break; fi
		prof=$OUT/egressd-$mode.pprof
		( (go tool pprof -proto -seconds 3 "http://$EGRESSD_ADMIN/debug/pprof/profile" >"$prof" 2>/dev/null) || true) &
		ppid=$!
		"${PIN_LOAD[@]}" "$BENCH" run --name egressd-profiled --mode "$mode" --proxy "$PROXY_ADDR" --proxy-protocol v2 \
			--link-id "$LINK_ID" --origin "$ORIGIN" --origin-cert "$OUT/origin.pem" --origin-key "$OUT/origin-key.pem" \
			$(mode_args "$mode" | sed "s/--duration [^ ]*/--duration 4s/") >/dev/null 2>&1 || true
		wait "$ppid" || true
		stop
		if [[ -s $prof ]]; then
			go tool pprof -top -nodecount=12 "$OUT/egressd" "$prof" >"$OUT/egressd-$mode.top" 2>/dev/null || true
		fi
	done
fi

"$BENCH" report --in "$RESULTS" --commands "$CMDS" --notes "$NOTES" --profiles "$OUT" --out bench/RESULTS.md

# --- Syscalls per operation (issue 18): strace -c on the proxy, all its
# threads, while the load generator runs a short connect-rate and http-rps
# run; counts are divided by the operations the load generator completed.
# strace slows the proxy down, so only the counts are reported, never times.
if command -v strace >/dev/null && command -v python3 >/dev/null; then
	STRACE_PROXIES=(egressd relay)
	((HAVE_SQUID)) && STRACE_PROXIES+=(squid)
	for mode in connect-rate http-rps; do
		for name in "${STRACE_PROXIES[@]}"; do
			if ! start "$name"; then continue; fi
			sfile=$OUT/strace-$name-$mode.txt
			strace -c -f -q -o "$sfile" -p "$PROXY_PID" &
			spid=$!
			sleep 0.5
			"${PIN_LOAD[@]}" "$BENCH" run --json --name "$name" --mode "$mode" --proxy "$PROXY_ADDR" "${RELAY_FLAG[@]}" \
				--proxy-protocol v2 --link-id "$LINK_ID" --origin "$ORIGIN" --origin-cert "$OUT/origin.pem" \
				--origin-key "$OUT/origin-key.pem" $(mode_args "$mode" | sed "s/--duration [^ ]*/--duration 2s/") \
				>"$OUT/strace-$name-$mode.json" 2>>"$OUT/bench.log" || true
			kill -INT "$spid" 2>/dev/null || true
			wait "$spid" 2>/dev/null || true
			stop
		done
	done
	python3 - "$OUT" "${STRACE_PROXIES[@]}" >>bench/RESULTS.md <<'PY'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
print("\n## Syscalls per operation\n")
print("`strace -c -f -p PROXY` during a 2 s run of each mode (same load flags, shorter); calls divided by the operations completed. "
      "An operation is one new tunnel (CONNECT, TLS resumption through the tunnel, one GET) for connect-rate and one request for http-rps. "
      "The top syscalls are listed by calls per operation.\n")
for mode in ("connect-rate", "http-rps"):
    print(f"### {mode}\n")
    print("| proxy | ops | syscalls/op | top syscalls per op |")
    print("|---|---:|---:|---|")
    for n in names:
        try:
            ops = json.loads(open(os.path.join(out, f"strace-{n}-{mode}.json")).read().splitlines()[-1])["ops"]
            rows = {}
            for line in open(os.path.join(out, f"strace-{n}-{mode}.txt")):
                f = line.split()
                if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                    rows[f[-1]] = int(f[3])
        except (OSError, ValueError, KeyError, IndexError):
            print(f"| {n} | - | - | no trace |")
            continue
        if not ops:
            print(f"| {n} | 0 | - | no operations completed |")
            continue
        top = sorted(rows.items(), key=lambda kv: -kv[1])[:8]
        print(f"| {n} | {ops} | {sum(rows.values())/ops:.1f} | " + ", ".join(f"{k} {v/ops:.1f}" for k, v in top) + " |")
    print()
PY
fi

# --- Go micro-benchmarks of the hot paths, pinned like the proxy, so a
# change in the figures above can be traced to a stage.
MICRO=(go test -run '^$' -bench . -benchmem -benchtime 300ms -cpu 1 ./acl ./tlsinspect ./proxy ./metrics)
{
	echo
	echo "## Go micro-benchmarks"
	echo
	echo "Command: \`${PIN_PROXY[*]} ${MICRO[*]}\` (ns/op is wall time on a pinned core)."
	echo
	echo '```'
	"${PIN_PROXY[@]}" "${MICRO[@]}" 2>&1 | grep -E '^(Benchmark|ok|FAIL)' || true
	echo '```'
} >>bench/RESULTS.md
echo "compare: wrote bench/RESULTS.md in $(($(date +%s) - START))s" >&2

#!/usr/bin/env bash
# The side-by-side benchmark suite: sluice vs Debian's nginx on loopback,
# one command. See docs/benchmarks.md ("How the suite measures") for what
# each workload does and why; in short:
#
#   idle        10,000 idle keep-alive connections: bytes per connection
#   return200   `return 200` with a 1 KiB body, keep-alive, wrk -t1 -c50
#   static1k    a 1 KiB static file, keep-alive, wrk -t1 -c50
#   proxy_ka    1 KiB responses through the proxy, upstream keep-alive
#               (keepalive 16), wrk -t1 -c50; origin: a third, separate
#               nginx (`return 200`, one worker) shared by both proxies
#   bigfile     a BIG_GIB (1) GiB static file (sendfile on both) read
#               whole by the in-tree client; GB/s
#   stream      one long chunked stream (64 KiB chunks) from the in-tree
#               origin to the in-tree client: origin direct, through each
#               server's proxy with proxy_buffering on and off; GB/s
#   gzip        a 100 MB text file gzipped at levels 1 and 6, MB/s of input
#   sub_filter  sub_filter (one pattern that occurs, sub_filter_once off)
#               over the same 100 MB file, MB/s
#   slow        a client reading a long response at a limited rate (curl
#               --limit-rate): static file, proxy buffering on, off; the
#               server's VmRSS sampled every second, and its VmHWM
#
# Every workload also records each server's peak RSS while it ran (VmHWM,
# reset before the workload through /proc/PID/clear_refs). At the end: a
# table on stdout, docs/benchmarks.svg, and the figures section of
# docs/benchmarks.md rewritten (UPDATE_DOCS=0 to leave docs/ alone).
#
#   cargo build --release && benches/suite.sh        # about 6 minutes
#   WORKLOADS="stream gzip" benches/suite.sh         # some workloads only
#   WRK_SECS=3 IDLE_CONNS=2000 STREAM_GIB=0.5 TEXT_MB=20 SLOW_GIB=0.5 \
#       benches/suite.sh                             # a quick run
#
# Settings (environment): WORKLOADS (names above, space-separated; default
# all), WRK_SECS (10), WRK_ROUNDS (2), IDLE_CONNS (10000), STREAM_GIB (2),
# STREAM_ROUNDS (3, also bigfile's rounds), BIG_GIB (1), TEXT_MB (100, in 10^6 bytes), TEXT_ROUNDS (2),
# SLOW_GIB (2), SLOW_RATE (curl's --limit-rate, 200M), CLIENT (origin = the
# in-tree client, or curl; for stream/gzip/sub_filter), SLUICE, NGINX,
# UPDATE_DOCS (1), KEEP_TMP (0).
#
# Needs: bash, python3 (std only), and for some workloads wrk, curl, rustc
# (to build benches/tools/origin.rs, std only), gzip/cmp. A workload whose
# tool is missing is skipped with the reason. Touches nothing outside its
# temporary directory except docs/benchmarks.{md,svg}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SLUICE=${SLUICE:-$root/target/release/sluice}
NGINX=${NGINX:-/usr/sbin/nginx}
ALL_WORKLOADS="idle return200 static1k proxy_ka bigfile stream gzip sub_filter slow"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
WRK_SECS=${WRK_SECS:-10}
WRK_ROUNDS=${WRK_ROUNDS:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
STREAM_GIB=${STREAM_GIB:-2}
STREAM_ROUNDS=${STREAM_ROUNDS:-3}
BIG_GIB=${BIG_GIB:-1}
TEXT_MB=${TEXT_MB:-100}
TEXT_ROUNDS=${TEXT_ROUNDS:-2}
SLOW_GIB=${SLOW_GIB:-2}
SLOW_RATE=${SLOW_RATE:-200M}
CLIENT=${CLIENT:-origin}
UPDATE_DOCS=${UPDATE_DOCS:-1}
KEEP_TMP=${KEEP_TMP:-0}

# The proxy settings both servers get (the same directives, stated in the
# report): 64 KiB buffers, so one origin chunk fits one buffer.
PROXY_BUFFER_SIZE=64k
PROXY_BUFFERS="8 64k"
PROXY_BUSY=128k

say() { echo "suite: $*" >&2; }
die() { say "$*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

for w in $WORKLOADS; do
    [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload '$w' (known: $ALL_WORKLOADS)"
done
[[ -x $SLUICE ]] || die "$SLUICE not found: run 'cargo build --release' first (or set SLUICE)"
have "$NGINX" || die "$NGINX not found (set NGINX): every workload is side by side with nginx"
have python3 || die "python3 not found"

gib_bytes() { python3 -c "import sys; print(int(float(sys.argv[1]) * 2**30))" "$1"; }
STREAM_BYTES=$(gib_bytes "$STREAM_GIB")
SLOW_BYTES=$(gib_bytes "$SLOW_GIB")
BIG_BYTES=$(gib_bytes "$BIG_GIB")
TEXT_BYTES=$(python3 -c "import sys; print(int(float(sys.argv[1]) * 10**6))" "$TEXT_MB")

tmp=$(mktemp -d /tmp/sluice-suite.XXXXXX)
res=$tmp/results.tsv
: >"$res"
declare -A pid=()   # running processes, by name
cleanup() {
    local p
    for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP_TMP == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# One result line: kind, then fields, tab-separated (benches/tools/report.py
# reads them).
emit() { local IFS=$'\t'; echo "$*" >>"$res"; }
skip() { say "skipping $1: $2"; emit skip "$1" "$2"; }
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }

# ---- helpers (python3, std only) ----

cat >"$tmp/free_ports.py" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF

cat >"$tmp/get.py" <<'EOF'
# get.py PORT BODYFILE: wait until PORT answers, then check GET / returns
# 200 with exactly the body in BODYFILE; print the response's size.
import socket, sys, time
port, want = int(sys.argv[1]), open(sys.argv[2], "rb").read()
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(f"port {port} never accepted a connection")
        time.sleep(0.05)
s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.1 200") or body != want:
    sys.exit(f"port {port}: unexpected response:\n{head.decode(errors='replace')}")
print(len(head) + 4 + len(body))
EOF

cat >"$tmp/idle.py" <<'EOF'
# idle.py PORT PID N: open N keep-alive connections, one request each, and
# print "before after alive": the server's VmRSS in kB before and after,
# and how many connections the server still holds.
import resource, select, socket, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
def one_request(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("server closed a fresh connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n")
                  if l.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += s.recv(65536)
time.sleep(1)
before = rss_kb()
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(REQ)
    one_request(s)
    conns.append(s)
time.sleep(2)
after = rss_kb()
poller = select.poll()
for s in conns:
    poller.register(s, select.POLLIN)
closed = len(poller.poll(0))
print(before, after, n - closed)
for s in conns:
    s.close()
EOF

cat >"$tmp/slow.py" <<'EOF'
# slow.py PID URL RATE WARMURL: one fast GET of WARMURL (the same location,
# a small response: first-use costs such as code pages and pools are not
# growth), then curl --limit-rate RATE on URL while PID's VmRSS and RssAnon
# are sampled every second. Prints "before_kB peak_kB hwm_kB seconds bytes
# http_code anon_before_kB anon_peak_kB" (hwm: VmHWM after, reset just
# before the download).
import subprocess, sys, time
pid, url, rate, warm = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def field(name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
subprocess.run(["curl", "-s", "-o", "/dev/null", warm], check=True)
time.sleep(0.5)
with open(f"/proc/{pid}/clear_refs", "w") as f:
    f.write("5")
before, anon_before = field("VmRSS"), field("RssAnon")
peak, anon_peak = before, anon_before
start = time.time()
curl = subprocess.Popen(["curl", "-s", "--limit-rate", rate, "-o", "/dev/null",
                         "-w", "%{http_code} %{size_download}", url],
                        stdout=subprocess.PIPE, text=True)
while True:
    try:
        curl.wait(timeout=1)
        break
    except subprocess.TimeoutExpired:
        peak, anon_peak = max(peak, field("VmRSS")), max(anon_peak, field("RssAnon"))
out = curl.stdout.read().split()
peak, anon_peak = max(peak, field("VmRSS")), max(anon_peak, field("RssAnon"))
print(before, peak, field("VmHWM"), f"{time.time() - start:.1f}", out[1], out[0],
      anon_before, anon_peak)
EOF

cat >"$tmp/text.py" <<'EOF'
# text.py FILE BYTES: write BYTES of English-like text (words from a fixed
# vocabulary, seeded; a 4 MiB block, repeated: farther apart than deflate's
# 32 KiB window) and print how often "harbour" occurs in it.
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
words = ("the of and to in is was that for on with as by at from his her "
         "they this which had not are but have one were all there been "
         "when who more will would their time if about into than its two "
         "river water stream lock gate canal boat mill wheel flow level "
         "bank bridge barge rope stone iron wood keeper night morning "
         "weather rain wind north south east west town market road field "
         "harbour ship sea tide coast light house door window table chair "
         "book letter word number line page paper server request response "
         "header body chunk buffer filter module worker event socket").split()
rnd = random.Random(20261122)
lines, n = [], 0
while n < 4 << 20:
    line = " ".join(rnd.choices(words, k=rnd.randint(6, 14))).capitalize() + ".\n"
    lines.append(line)
    n += len(line)
block = "".join(lines).encode()[: 4 << 20]
data = block * (size // len(block)) + block[: size % len(block)]
with open(path, "wb") as f:
    f.write(data)
print(data.lower().count(b"harbour"))
EOF

python3 - >"$tmp/body.txt" <<'EOF'
import sys
lines = [(f"line {i:02d} of the 1 KiB body served by both servers " * 2)[:63]
         for i in range(16)]
body = "\n".join(lines) + "."
assert len(body) == 1024
sys.stdout.write(body)
EOF

# ---- files both servers serve (one directory, hard links per location) ----

www=$tmp/www
mkdir -p "$www/f" "$www/gz1" "$www/gz6" "$www/sub"
cp "$tmp/body.txt" "$www/f/1k"
if want gzip || want sub_filter; then
    say "writing a $TEXT_MB MB text file"
    harbours=$(python3 "$tmp/text.py" "$www/f/text" "$TEXT_BYTES")
    for d in gz1 gz6 sub; do ln "$www/f/text" "$www/$d/text"; done
fi
# The static file for the slow reader: sparse (its pages are the page
# cache's, not the server's, either way).
want slow && truncate -s "$SLOW_BYTES" "$www/f/big"
# The file for bigfile is written out (not sparse): its pages are real
# page-cache pages, as a served file's are.
if want bigfile; then
    say "writing a $BIG_GIB GiB file"
    head -c "$BIG_BYTES" /dev/zero >"$www/f/bigfile"
fi

# ---- the origin (in-tree, std only) ----

origin=
if want stream || want slow; then
    if have rustc; then
        rustc -O --edition 2021 -o "$tmp/origin" "$here/tools/origin.rs" \
            || die "could not build benches/tools/origin.rs"
        origin=$tmp/origin
    else
        say "rustc not found: no chunked origin"
    fi
fi
if [[ $CLIENT == curl ]] && ! have curl; then die "CLIENT=curl but curl not found"; fi
if [[ $CLIENT == origin && -z $origin ]] && have rustc; then
    rustc -O --edition 2021 -o "$tmp/origin" "$here/tools/origin.rs"
    origin=$tmp/origin
fi
[[ $CLIENT == origin && -z $origin ]] && CLIENT=curl

# ---- configurations ----

read -r port_sluice port_nginx port_small port_origin < <(python3 "$tmp/free_ports.py" 4)
declare -A port=([sluice]=$port_sluice [nginx]=$port_nginx [small]=$port_small)

# conf NAME: writes $tmp/NAME/NAME.conf, the same directives for both
# servers apart from nginx's `user` and temp paths.
conf() {
    local name=$1 dir=$tmp/$1 extra_main="" extra_http=""
    mkdir -p "$dir/logs" "$dir/proxy_temp"
    if [[ $name == nginx ]]; then
        extra_main="user root;"
        extra_http="client_body_temp_path $dir/body; fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;"
    fi
    cat >"$dir/$name.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
$extra_main
pid $dir/logs/$name.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
http {
    $extra_http
    access_log off;
    default_type text/plain;
    sendfile on;
    keepalive_timeout 300s;
    proxy_temp_path $dir/proxy_temp;
    proxy_http_version 1.1;
    proxy_buffer_size $PROXY_BUFFER_SIZE;
    proxy_buffers $PROXY_BUFFERS;
    proxy_busy_buffers_size $PROXY_BUSY;
    upstream stream_origin { server 127.0.0.1:$port_origin; }
    upstream small_origin { server 127.0.0.1:$port_small; keepalive 16; }
    server {
        listen 127.0.0.1:${port[$name]};
        root $www;
        location = / { return 200 '$(cat "$tmp/body.txt")'; }
        location /f/ { }
        location /gz1/ { gzip on; gzip_comp_level 1; gzip_types text/plain; }
        location /gz6/ { gzip on; gzip_comp_level 6; gzip_types text/plain; }
        location /sub/ {
            sub_filter harbour HARBOR;
            sub_filter_once off;
            sub_filter_types text/plain;
        }
        location /pb/ { proxy_pass http://stream_origin; proxy_buffering on; }
        location /pn/ { proxy_pass http://stream_origin; proxy_buffering off; }
        location /ka/ {
            proxy_pass http://small_origin;
            proxy_set_header Connection "";
        }
    }
}
EOF
}
conf sluice
conf nginx
# The small-response origin: a third, separate nginx, one worker.
mkdir -p "$tmp/small/logs"
cat >"$tmp/small/small.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/small/logs/small.pid;
error_log $tmp/small/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/small/body; proxy_temp_path $tmp/small/proxy;
    fastcgi_temp_path $tmp/small/fastcgi; uwsgi_temp_path $tmp/small/uwsgi; scgi_temp_path $tmp/small/scgi;
    server {
        listen 127.0.0.1:$port_small;
        location / { return 200 '$(cat "$tmp/body.txt")'; }
    }
}
EOF

start() {
    local name=$1 dir=$tmp/$1
    case $name in
        sluice) "$SLUICE" -p "$dir/" -c "$dir/sluice.conf" -e "$dir/logs/error.log" \
                    >"$dir/logs/stdout" 2>&1 & ;;
        nginx | small) "$NGINX" -p "$dir/" -c "$dir/$name.conf" -e "$dir/logs/error.log" \
                    >"$dir/logs/stdout" 2>&1 & ;;
    esac
    pid[$name]=$!
    if ! python3 "$tmp/get.py" "${port[$name]}" "$tmp/body.txt" >"$dir/response_size"; then
        say "$name did not serve the body; its log:"
        tail -n 20 "$dir/logs/error.log" "$dir/logs/stdout" >&2 || true
        exit 1
    fi
}
stop() {
    kill "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
    unset "pid[$1]"
}
alive() {
    kill -0 "${pid[$1]}" 2>/dev/null && return 0
    say "$1 died; its output:"
    tail -n 10 "$tmp/$1/logs/stdout" "$tmp/$1/logs/error.log" >&2 || true
    exit 1
}
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/${pid[$1]}/status"; }
hwm_reset() { local n; for n in sluice nginx; do echo 5 >"/proc/${pid[$n]}/clear_refs"; done; }
hwm_emit() { emit rss "$1" "$(status_kb sluice VmHWM)" "$(status_kb nginx VmHWM)"; }

# The best (largest) of a space-separated list.
best() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | tail -n 1; }

wrk_rps() { # wrk_rps NAME PATH: requests/s
    local out r errs
    out=$(wrk -t1 -c50 -d"${WRK_SECS}s" "http://127.0.0.1:${port[$1]}$2")
    r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
    if [[ -n $errs ]]; then
        say "$1 $2: $errs"
        emit note "$1 $2 (wrk): $(tr '\n' ' ' <<<"$errs")"
    fi
    alive "$1"
    echo "$r"
}

fetch() { # fetch PORT PATH [HEADER]: prints "code bytes seconds"
    local p=$1 path=$2 hdr=${3:-}
    if [[ $CLIENT == origin ]]; then
        if [[ -n $hdr ]]; then "$origin" get "$p" "$path" "$hdr"; else "$origin" get "$p" "$path"; fi
    else
        curl -s -o /dev/null ${hdr:+-H "$hdr"} -w '%{http_code} %{size_download} %{time_total}\n' \
            "http://127.0.0.1:$p$path"
    fi
}

# rate_of NAME "code bytes seconds" WANT_BYTES DIVISOR: bytes/seconds/DIVISOR
# for the server's own column, or a note when the response was wrong.
rate_of() {
    local who=$1 code bytes secs
    read -r code bytes secs <<<"$2"
    if [[ $code != 200 || ( -n $3 && $bytes != "$3" ) ]]; then
        say "$who: status $code, $bytes bytes (expected ${3:-any})"
        emit note "$who: status $code, $bytes bytes (expected ${3:-any})"
        echo 0
        return
    fi
    python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]) / float(sys.argv[3]):.3f}')" \
        "$bytes" "$secs" "${4:-1}"
}

# ---- run ----

emit info date "$(date -u '+%Y-%m-%d %H:%M UTC')"
emit info machine "$(nproc) cores, $(uname -sr), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
emit info nginx "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
emit info sluice "$(git -C "$root" log -1 --format=%h -- core http modules src Cargo.toml 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- core http modules src 2>/dev/null || echo ' (+ local changes)')"
emit info settings "WRK_SECS=$WRK_SECS WRK_ROUNDS=$WRK_ROUNDS IDLE_CONNS=$IDLE_CONNS STREAM_GIB=$STREAM_GIB STREAM_ROUNDS=$STREAM_ROUNDS BIG_GIB=$BIG_GIB TEXT_MB=$TEXT_MB TEXT_ROUNDS=$TEXT_ROUNDS SLOW_GIB=$SLOW_GIB SLOW_RATE=$SLOW_RATE CLIENT=$CLIENT"
emit info workloads "$WORKLOADS"
emit info proxy "proxy_buffer_size $PROXY_BUFFER_SIZE; proxy_buffers $PROXY_BUFFERS; proxy_busy_buffers_size $PROXY_BUSY; proxy_http_version 1.1"

if want stream || want slow; then
    if [[ -n $origin ]]; then
        "$origin" serve "$tmp/origin.port.tmp" >"$tmp/origin.log" 2>&1 &
        pid[origin]=$!
        for _ in $(seq 100); do [[ -s $tmp/origin.port.tmp ]] && break; sleep 0.05; done
        # The port was chosen by the origin itself; the configs name it.
        real=$(cat "$tmp/origin.port.tmp")
        sed -i "s/127.0.0.1:$port_origin;/127.0.0.1:$real;/" "$tmp/sluice/sluice.conf" "$tmp/nginx/nginx.conf"
        port_origin=$real
    fi
fi
# Each idle connection costs the server one descriptor and the client one;
# the servers inherit the limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if want proxy_ka; then start small; fi
start sluice
start nginx
emit info response_size "sluice $(cat "$tmp/sluice/response_size"), nginx $(cat "$tmp/nginx/response_size")"

# idle first, on fresh servers, before any load grows a heap.
if want idle; then
    if (( $(ulimit -n) < IDLE_CONNS + 100 )); then
        skip idle "open-file limit $(ulimit -n) is too low for $IDLE_CONNS connections"
    else
        say "idle: $IDLE_CONNS keep-alive connections each"
        hwm_reset
        declare -A idle=()
        for name in sluice nginx; do
            idle[$name]=$(python3 "$tmp/idle.py" "${port[$name]}" "${pid[$name]}" "$IDLE_CONNS")
            alive "$name"
        done
        hwm_emit idle
        emit idle "$IDLE_CONNS" "${idle[sluice]}" "${idle[nginx]}"
    fi
fi

wrk_workload() { # wrk_workload NAME PATH WHAT TARGET
    local w=$1 path=$2 what=$3 target=$4 name round
    if ! have wrk; then skip "$w" "wrk not found"; return; fi
    say "$w: wrk -t1 -c50 -d${WRK_SECS}s $path, $WRK_ROUNDS rounds"
    declare -A r=()
    hwm_reset
    # Which server goes first alternates, so a drift of the machine over
    # the run does not favour one; round i of each list makes a pair.
    local order=(sluice nginx)
    for round in $(seq "$WRK_ROUNDS"); do
        for name in "${order[@]}"; do
            r[$name]="${r[$name]:-} $(wrk_rps "$name" "$path")"
            alive "$name"
        done
        order=("${order[1]}" "${order[0]}")
    done
    hwm_emit "$w"
    emit row "$w" "$what" "req/s" "$(best "${r[sluice]}")" "$(best "${r[nginx]}")" "$target" "${r[sluice]# }" "${r[nginx]# }"
}

want return200 && wrk_workload return200 / "1 KiB \`return 200\`, keep-alive, wrk -t1 -c50" 1
want static1k && wrk_workload static1k /f/1k "1 KiB static file, keep-alive, wrk -t1 -c50" 1.15
want proxy_ka && wrk_workload proxy_ka /ka/ "1 KiB via proxy, upstream keepalive 16, wrk -t1 -c50" 1.1

if want bigfile; then
    if [[ -z $origin && $CLIENT == origin ]]; then
        skip bigfile "no origin client (rustc not found)"
    else
        say "bigfile: $BIG_GIB GiB static file, $STREAM_ROUNDS rounds"
        declare -A bf=()
        hwm_reset
        for round in $(seq "$STREAM_ROUNDS"); do
            for name in sluice nginx; do
                bf[$name]="${bf[$name]:-} $(rate_of "$name /f/bigfile" "$(fetch "${port[$name]}" /f/bigfile)" "$BIG_BYTES" 1e9)"
                alive "$name"
            done
        done
        hwm_emit bigfile
        emit row bigfile "$BIG_GIB GiB static file, sendfile on" "GB/s" \
            "$(best "${bf[sluice]}")" "$(best "${bf[nginx]}")" 1 "${bf[sluice]# }" "${bf[nginx]# }"
    fi
fi

if want stream; then
    if [[ -z $origin ]]; then
        skip stream "no origin (rustc not found)"
    else
        say "stream: $STREAM_GIB GiB chunked, $STREAM_ROUNDS rounds"
        path=/stream/$STREAM_BYTES
        declare -A g=()
        hwm_reset
        for round in $(seq "$STREAM_ROUNDS"); do
            g[direct]="${g[direct]:-} $(rate_of origin "$(fetch "$port_origin" "$path")" "$STREAM_BYTES" 1e9)"
            for name in sluice nginx; do
                for b in pb pn; do
                    g[$name$b]="${g[$name$b]:-} $(rate_of "$name /$b" "$(fetch "${port[$name]}" "/$b$path")" "$STREAM_BYTES" 1e9)"
                    alive "$name"
                done
            done
        done
        hwm_emit stream
        direct=$(best "${g[direct]}")
        emit row stream "$STREAM_GIB GiB chunked stream via proxy, proxy_buffering on" "GB/s" \
            "$(best "${g[sluicepb]}")" "$(best "${g[nginxpb]}")" 1.5 "${g[sluicepb]# }" "${g[nginxpb]# }"
        emit row stream "$STREAM_GIB GiB chunked stream via proxy, proxy_buffering off" "GB/s" \
            "$(best "${g[sluicepn]}")" "$(best "${g[nginxpn]}")" 2 "${g[sluicepn]# }" "${g[nginxpn]# }"
        emit vsorigin stream "sluice proxy (buffering on) / origin direct" "GB/s" "$(best "${g[sluicepb]}")" "$direct" 0.85 "${g[direct]# }"
        emit vsorigin stream "sluice proxy (buffering off) / origin direct" "GB/s" "$(best "${g[sluicepn]}")" "$direct" 0.85 "${g[direct]# }"
        emit vsorigin stream "nginx proxy (buffering off) / origin direct" "GB/s" "$(best "${g[nginxpn]}")" "$direct" "" "${g[direct]# }"
    fi
fi

text_workload() { # text_workload NAME LOCATION WHAT TARGET HEADER WANT_BYTES
    local w=$1 loc=$2 what=$3 target=$4 hdr=$5 want_bytes=$6 name round
    say "$w: $TEXT_MB MB through /$loc/, $TEXT_ROUNDS rounds"
    declare -A m=()
    hwm_reset
    for round in $(seq "$TEXT_ROUNDS"); do
        for name in sluice nginx; do
            out=$(fetch "${port[$name]}" "/$loc/text" "$hdr")
            read -r code bytes secs <<<"$out"
            m[$name]="${m[$name]:-} $(rate_of "$name /$loc" "$code $TEXT_BYTES $secs" "" 1e6)"
            if [[ -n $want_bytes && $bytes != "$want_bytes" ]]; then
                emit note "$name /$loc: $bytes bytes out, expected $want_bytes"
            fi
            if [[ $round == 1 ]]; then emit outsize "$w" "$name" "$bytes"; fi
            alive "$name"
        done
    done
    hwm_emit "$w"
    emit row "$w" "$what" "MB/s" "$(best "${m[sluice]}")" "$(best "${m[nginx]}")" "$target" "${m[sluice]# }" "${m[nginx]# }"
}

if want gzip; then
    for level in 1 6; do
        text_workload "gzip$level" "gz$level" "gzip level $level of a $TEXT_MB MB text file (MB/s of input)" 1.5 \
            "Accept-Encoding: gzip" ""
    done
    # Correctness, once per server: the gzipped body decompresses to the file.
    if have curl && have gzip && have cmp; then
        for name in sluice nginx; do
            if ! curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:${port[$name]}/gz1/text" \
                    | gzip -dc | cmp -s - "$www/f/text"; then
                emit note "$name: gzip level 1 output does NOT decompress to the input"
                say "$name: gzip output does not decompress to the input"
            fi
        done
    fi
fi
if want sub_filter; then
    # "harbour" (7 bytes) becomes "HARBOR" (6): one byte shorter each time.
    text_workload sub_filter sub "sub_filter over a $TEXT_MB MB text file ($harbours matches)" 1 "" \
        "$((TEXT_BYTES - harbours))"
fi

if want slow; then
    if ! have curl; then
        skip slow "curl not found"
    else
        for name in sluice nginx; do
            for what in static pb pn; do
                case $what in
                    static) path=/f/big warm=/f/1k ;;
                    *) [[ -z $origin ]] && continue
                       path=/$what/stream/$SLOW_BYTES warm=/$what/stream/1048576 ;;
                esac
                say "slow: $name $path at $SLOW_RATE/s"
                out=$(python3 "$tmp/slow.py" "${pid[$name]}" "http://127.0.0.1:${port[$name]}$path" "$SLOW_RATE" \
                    "http://127.0.0.1:${port[$name]}$warm")
                alive "$name"
                emit slow "$name" "$what" $out
                read -r _ _ _ _ bytes code _ <<<"$out"
                if [[ $code != 200 || $bytes != "$SLOW_BYTES" ]]; then
                    emit note "slow $name $path: status $code, $bytes bytes (expected $SLOW_BYTES)"
                fi
            done
        done
    fi
fi

# ---- the servers' own complaints ----
for name in sluice nginx; do
    n=$(grep -c -E '\[(warn|error|crit|alert|emerg)\]' "$tmp/$name/logs/error.log" 2>/dev/null || true)
    emit errlog "$name" "${n:-0}"
    if [[ ${n:-0} != 0 ]]; then
        # Without the time, pid and connection number, so alike lines count together.
        grep -E '\[(warn|error|crit|alert|emerg)\]' "$tmp/$name/logs/error.log" \
            | sed -E 's/^[0-9/]+ [0-9:]+ //; s/[0-9]+#[0-9]+: (\*[0-9]+ )?//; s/, client: .*//; s/[0-9]{6,}/N/g' \
            | sort | uniq -c | sort -rn | head -n 5 \
            | while read -r line; do emit errline "$name" "${line:0:200}"; done
    fi
done
emit info load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
stop sluice
stop nginx

args=("$res")
[[ $UPDATE_DOCS == 1 ]] && args+=(--doc "$root/docs/benchmarks.md" --svg "$root/docs/benchmarks.svg")
python3 "$here/tools/report.py" "${args[@]}"

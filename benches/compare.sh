#!/usr/bin/env bash
# Side-by-side measurements of sluice and nginx on loopback.
#
#   a. `return 200` with a 1 KiB body, keep-alive: wrk -t1 -c50 -d10s,
#      requests/s, each server run twice (interleaved), best and both shown.
#   b. 10,000 idle keep-alive connections (each has done one request): the
#      server's VmRSS before and after, bytes per connection.
#
# Both servers run as one plain foreground process (nginx with
# `master_process off`, so its only process is the one that serves; sluice
# with one worker thread) from a temporary prefix, on free loopback ports,
# with the same 1 KiB body and keepalive_timeout 300s. nginx also gets
# `access_log off` (both: the access log is not what is measured) and temp paths inside the
# prefix. Run from anywhere after `cargo build --release`:
#
#   benches/compare.sh                 # SLUICE=... NGINX=... to override
#   IDLE_CONNS=2000 WRK_SECS=5 benches/compare.sh   # a quicker run
#
# Needs: bash, python3 (std only), wrk, nginx. Touches nothing outside its
# temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLUICE=${SLUICE:-$here/../target/release/sluice}
NGINX=${NGINX:-/usr/sbin/nginx}
IDLE_CONNS=${IDLE_CONNS:-10000}
WRK_SECS=${WRK_SECS:-10}

for tool in "$SLUICE" "$NGINX" wrk python3; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found" >&2; exit 1; }
done

# Each idle connection costs the server one descriptor and the client one.
# The brief is 65536; a container's hard limit may be lower, then take that.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < IDLE_CONNS + 100 )); then
    echo "compare.sh: open-file limit $(ulimit -n) is too low for $IDLE_CONNS connections" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/sluice-compare.XXXXXX)
declare -A pid=()   # the running servers, by name
cleanup() {
    local p
    for p in "${pid[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- helpers written into the temporary directory (python3, std only) ----

cat >"$tmp/free_port.py" <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF

cat >"$tmp/get.py" <<'EOF'
# get.py PORT BODYFILE: wait until PORT answers, then check GET / returns
# 200 with exactly the body in BODYFILE.
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
# print "before after alive": the server's VmRSS in kB before and after
# (PID's /proc status), and how many connections the server still holds.
import resource, select, socket, sys, time

port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")

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
time.sleep(2)  # let the server settle into keep-alive
after = rss_kb()
# A connection the server closed is readable (EOF) at once.
poller = select.poll()
for s in conns:
    poller.register(s, select.POLLIN)
closed = len(poller.poll(0))
print(before, after, n - closed)
for s in conns:
    s.close()
EOF

python3 - >"$tmp/body.txt" <<'EOF'
# 1024 bytes: 16 lines of 64 characters (the last without a newline, as
# $(cat) would drop it), no quotes, backslashes or '$'.
import sys
lines = [(f"line {i:02d} of the 1 KiB body served by both servers " * 2)[:63]
         for i in range(16)]
body = "\n".join(lines) + "."
assert len(body) == 1024
sys.stdout.write(body)
EOF

# ---- configurations ----

# conf NAME PORT EXTRA_HTTP: writes $tmp/NAME/NAME.conf.
conf() {
    local name=$1 port=$2 extra_http=$3 dir=$tmp/$1
    mkdir -p "$dir/logs"
    cat >"$dir/$name.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/logs/$name.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
http {
    $extra_http
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 '$(cat "$tmp/body.txt")';
        }
    }
}
EOF
}

port_sluice=$(python3 "$tmp/free_port.py")
port_nginx=$(python3 "$tmp/free_port.py")
while [[ $port_nginx == "$port_sluice" ]]; do port_nginx=$(python3 "$tmp/free_port.py"); done

conf sluice "$port_sluice" "access_log off;"
nx=$tmp/nginx
conf nginx "$port_nginx" "access_log off;
    client_body_temp_path $nx/body; proxy_temp_path $nx/proxy;
    fastcgi_temp_path $nx/fastcgi; uwsgi_temp_path $nx/uwsgi; scgi_temp_path $nx/scgi;"

declare -A port=([sluice]=$port_sluice [nginx]=$port_nginx)

start() {
    local name=$1 dir=$tmp/$1
    case $name in
        sluice) "$SLUICE" -p "$dir/" -c "$dir/sluice.conf" -e "$dir/logs/error.log" \
                    >"$dir/logs/stdout" 2>&1 & ;;
        nginx) "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
                    >"$dir/logs/stdout" 2>&1 & ;;
    esac
    pid[$name]=$!
    if ! python3 "$tmp/get.py" "${port[$name]}" "$tmp/body.txt" >"$dir/response_size"; then
        echo "compare.sh: $name did not serve the body; its log:" >&2
        tail -n 20 "$dir/logs/error.log" "$dir/logs/stdout" >&2 || true
        exit 1
    fi
}

stop() {
    kill "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
    unset "pid[$1]"
}

# ---- b. idle connections (fresh servers, before wrk grows any heap) ----

declare -A idle=()
for name in sluice nginx; do
    start "$name"
    idle[$name]=$(python3 "$tmp/idle.py" "${port[$name]}" "${pid[$name]}" "$IDLE_CONNS")
    stop "$name"
done

# ---- a. requests/s ----

declare -A rps=()
start sluice
start nginx
for round in 1 2; do
    for name in sluice nginx; do
        out=$(wrk -t1 -c50 -d"${WRK_SECS}s" "http://127.0.0.1:${port[$name]}/")
        r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
        errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
        [[ -n $errors ]] && echo "$name round $round: $errors" >&2
        if ! kill -0 "${pid[$name]}" 2>/dev/null; then
            echo "compare.sh: $name died during wrk round $round; its output:" >&2
            tail -n 5 "$tmp/$name/logs/stdout" "$tmp/$name/logs/error.log" >&2 || true
            exit 1
        fi
        rps[$name]="${rps[$name]:-} $r"
    done
done
stop sluice
stop nginx

# ---- table ----

best() { tr ' ' '\n' <<<"$1" | sort -g | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
per_conn() {
    read -r before after alive <<<"$1"
    awk -v b="$before" -v a="$after" -v n="$IDLE_CONNS" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'
}

sb=$(best "${rps[sluice]}")
nb=$(best "${rps[nginx]}")
sc=$(per_conn "${idle[sluice]}")
nc=$(per_conn "${idle[nginx]}")

echo
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $("$NGINX" -v 2>&1)"
echo "response bytes (head + body): sluice $(cat "$tmp/sluice/response_size"), nginx $(cat "$tmp/nginx/response_size")"
echo
printf '%-40s %14s %14s %14s\n' "what" "sluice" "nginx" "sluice/nginx"
printf '%-40s %14s %14s %14s\n' "req/s, 1 KiB return 200 (best of 2)" "$sb" "$nb" "$(ratio "$sb" "$nb")"
printf '%-40s %14s %14s\n' "  both runs" "${rps[sluice]# }" "${rps[nginx]# }"
printf '%-40s %14s %14s %14s\n' "bytes per idle keep-alive connection" "$sc" "$nc" "$(ratio "$sc" "$nc")"
printf '%-40s %14s %14s\n' "  VmRSS kB before/after, conns alive" \
    "$(tr ' ' / <<<"${idle[sluice]}")" "$(tr ' ' / <<<"${idle[nginx]}")"

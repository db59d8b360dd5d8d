#!/usr/bin/env bash
# make plant: a whole Trustline plant on this machine, on loopback, for
# anyone to try. It starts (all from binaries already installed):
#   - a fresh PostgreSQL database trustline_plant on 127.0.0.1:5432,
#   - a Redis Cluster of 3 masters and 3 replicas (redis-server),
#   - trustline init, then 2 api, 2 presigner, 3 responder, 2 origin,
#     2 crlgen and 1 watch processes,
#   - two Certificate Transparency logs (TesseraCT's posix, when installed)
#     that the api instances log every certificate to,
#   - Varnish in front of the responders (/ocsp/) and origins (/crl/),
# prints where everything is, and stops everything it started on Ctrl-C.
# Everything lives under $PLANT_DIR (default ./var/plant), re-created on
# each run. PLANT_INIT_ARGS adds flags to trustline init, e.g.
# "--resolver 127.0.0.1:5353" for a DNS server that validations (and ACME
# challenges) ask.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-./bin/trustline}
PLANT_DIR=${PLANT_DIR:-./var/plant}
PG=${PLANT_POSTGRES:-postgres://postgres@127.0.0.1:5432}
DB=${PLANT_DB:-trustline_plant}
BASE_PORT=${PLANT_PORT:-7000}   # roles on 7000+, Redis on 7100+, Varnish on 7080
VARNISH_PORT=$((BASE_PORT + 80))

pids=()
log() { printf 'plant: %s\n' "$*" >&2; }
stop() {
  trap - INT TERM EXIT
  log "stopping ${#pids[@]} processes"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  log "stopped"
}
trap stop INT TERM EXIT

need() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || { log "$1 is missing: $3"; exit 1; }; }
need redis-server /usr/bin/redis-server "apt-get install redis-server"
need varnishd /usr/sbin/varnishd "apt-get install varnish"
need psql /usr/bin/psql "apt-get install postgresql-client"
VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)

rm -rf "$PLANT_DIR"
mkdir -p "$PLANT_DIR/logs" "$PLANT_DIR/redis"
PLANT_DIR=$(cd "$PLANT_DIR" && pwd)

log "database $DB"
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DB_URL="$PG/$DB?sslmode=disable"

log "Redis Cluster: 6 nodes"
nodes=()
for i in 0 1 2 3 4 5; do
  port=$((BASE_PORT + 100 + i))
  d="$PLANT_DIR/redis/$port"; mkdir -p "$d"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 2000 --cluster-require-full-coverage no --appendonly no --save "" \
    --logfile "$d/redis.log" --daemonize no >/dev/null 2>&1 &
  pids+=($!)
  nodes+=("127.0.0.1:$port")
done
for n in "${nodes[@]}"; do
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "${n##*:}" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$PLANT_DIR/logs/redis-cluster.log" 2>&1
for _ in $(seq 1 100); do
  redis-cli -p $((BASE_PORT + 100)) cluster info 2>/dev/null | grep -q cluster_state:ok && break; sleep 0.1
done
CLUSTER_URL="redis://${nodes[0]}?addr=${nodes[1]}&addr=${nodes[2]}"

PUBLIC="http://127.0.0.1:$VARNISH_PORT"
log "trustline init"
"$BIN" init --dir "$PLANT_DIR/etc" --postgres "$DB_URL" --redis-cluster "$CLUSTER_URL" \
  --ocsp-url "$PUBLIC/ocsp/" --crl-url "$PUBLIC/crl" --api-url "http://127.0.0.1:$BASE_PORT" \
  --mail-dir "$PLANT_DIR/mail" --dev-urls --purge-cache "$PUBLIC" \
  --crl-period 10m --crl-revocation-delay 5s ${PLANT_INIT_ARGS:-} >"$PLANT_DIR/init.txt"
CFG="$PLANT_DIR/etc/trustline.yaml"

# Certificate Transparency: with TesseraCT's POSIX log installed (go install
# github.com/transparency-dev/tesseract/cmd/tesseract/posix@v0.1.1, as
# .ci/run does), two logs of two operators trusting the plant's root, and
# the api instances log every certificate to them (docs/ct.md).
TESSERACT=${TRUSTLINE_TESSERACT:-$(command -v posix || echo "$(go env GOPATH 2>/dev/null | cut -d: -f1)/bin/posix")}
CT_NOTE="off (TesseraCT's posix binary not found)"
if [ -x "$TESSERACT" ]; then
  log "two CT logs (TesseraCT)"
  list="$PLANT_DIR/etc/ct-logs.json"
  printf '{"version": "1", "operators": [' >"$list"
  for i in 0 1; do
    name=log$i; port=$((BASE_PORT + 60 + i)); d="$PLANT_DIR/ct/$name"
    mkdir -p "$d/storage/issuer"
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/key.pem" 2>/dev/null
    openssl ec -in "$d/key.pem" -pubout -outform DER -out "$d/pub.der" 2>/dev/null
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 OTEL_METRIC_EXPORT_INTERVAL=3600000 "$TESSERACT" \
      -http_endpoint "127.0.0.1:$port" -storage_dir "$d/storage" -private_key "$d/key.pem" \
      -roots_pem_file "$PLANT_DIR/etc/ca/root.pem" -origin "127.0.0.1/$name" -path_prefix "/$name" \
      -checkpoint_interval 500ms -batch_max_age 50ms >"$PLANT_DIR/logs/ct-$name.log" 2>&1 &
    pids+=($!)
    [ "$i" = 1 ] && printf ', ' >>"$list"
    printf '{"name": "Plant operator %s", "email": ["ct@example.net"], "logs": [], "tiled_logs": [{"description": "plant %s", "log_id": "%s", "key": "%s", "submission_url": "http://127.0.0.1:%d/%s/", "monitoring_url": "http://127.0.0.1:%d/%s/", "mmd": 60}]}' \
      "$i" "$name" "$(openssl dgst -sha256 -binary "$d/pub.der" | base64 -w0)" "$(base64 -w0 "$d/pub.der")" "$port" "$name" "$port" "$name" >>"$list"
  done
  printf ']}\n' >>"$list"
  awk '/^ct:/ {skip=1; next} skip && /^[^ ]/ {skip=0} !skip' "$CFG" >"$CFG.new"
  printf 'ct:\n    log_list: ct-logs.json\n' >>"$CFG.new"
  mv "$CFG.new" "$CFG"; chmod 600 "$CFG"
  for i in 0 1; do
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$((BASE_PORT + 60 + i))/log$i/ct/v1/get-roots" 2>/dev/null && break; sleep 0.1; done
  done
  CT_NOTE="http://127.0.0.1:$((BASE_PORT + 60))/log0/ and http://127.0.0.1:$((BASE_PORT + 61))/log1/ (TesseraCT; $list)"
fi

start() { # role port
  "$BIN" "$1" --config "$CFG" --listen "127.0.0.1:$2" >"$PLANT_DIR/logs/$1-$2.log" 2>&1 &
  pids+=($!)
}
start api $((BASE_PORT + 0)); start api $((BASE_PORT + 1))
start presigner $((BASE_PORT + 10)); start presigner $((BASE_PORT + 11))
start responder $((BASE_PORT + 20)); start responder $((BASE_PORT + 21)); start responder $((BASE_PORT + 22))
start origin $((BASE_PORT + 30)); start origin $((BASE_PORT + 31))
start crlgen $((BASE_PORT + 40)); start crlgen $((BASE_PORT + 41))

# The watch checks the CDN and every responder and origin behind it: its
# configuration is the plant's with the watch section filled in.
WATCH_CFG="$PLANT_DIR/etc/watch.yaml"
{
  awk '/^watch:/ {skip=1; next} skip && /^[^ ]/ {skip=0} !skip' "$CFG"
  printf 'watch:\n    responders: ["http://127.0.0.1:%d/ocsp/", "http://127.0.0.1:%d/ocsp/", "http://127.0.0.1:%d/ocsp/"]\n' \
    $((BASE_PORT + 20)) $((BASE_PORT + 21)) $((BASE_PORT + 22))
  printf '    origins: ["http://127.0.0.1:%d", "http://127.0.0.1:%d"]\n    interval: 30s\n' $((BASE_PORT + 30)) $((BASE_PORT + 31))
} >"$WATCH_CFG"
chmod 600 "$WATCH_CFG"

cat >"$PLANT_DIR/plant.vcl" <<VCL
vcl 4.1;
import directors;
backend r0 { .host = "127.0.0.1"; .port = "$((BASE_PORT + 20))"; .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; } }
backend r1 { .host = "127.0.0.1"; .port = "$((BASE_PORT + 21))"; .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; } }
backend r2 { .host = "127.0.0.1"; .port = "$((BASE_PORT + 22))"; .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; } }
backend o0 { .host = "127.0.0.1"; .port = "$((BASE_PORT + 30))"; .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; } }
backend o1 { .host = "127.0.0.1"; .port = "$((BASE_PORT + 31))"; .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; } }
acl purgers { "127.0.0.1"; }
sub vcl_init {
  new ocsp = directors.round_robin(); ocsp.add_backend(r0); ocsp.add_backend(r1); ocsp.add_backend(r2);
  new crl = directors.round_robin(); crl.add_backend(o0); crl.add_backend(o1);
}
sub vcl_recv {
  if (req.method == "PURGE") { if (client.ip !~ purgers) { return (synth(405)); } return (purge); }
  if (req.method == "BAN") {
    if (client.ip !~ purgers || req.http.Surrogate-Key !~ "^[a-z0-9-]+$") { return (synth(405)); }
    ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.Surrogate-Key + "(\s|$)");
    return (synth(200, "Banned"));
  }
  if (req.url ~ "^/ocsp/") { set req.backend_hint = ocsp.backend(); }
  else if (req.url ~ "^/crl/") { set req.backend_hint = crl.backend(); }
  else { return (synth(404)); }
}
VCL
"$VARNISHD" -F -n "$PLANT_DIR/varnish" -a "127.0.0.1:$VARNISH_PORT" -f "$PLANT_DIR/plant.vcl" \
  -s malloc,64m -j none -T none >"$PLANT_DIR/logs/varnish.log" 2>&1 &
pids+=($!)

wait_ready() { # url name
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  log "$2 did not become ready: see $PLANT_DIR/logs/"; exit 1
}
"$BIN" watch --config "$WATCH_CFG" --listen "127.0.0.1:$((BASE_PORT + 50))" >"$PLANT_DIR/logs/watch-$((BASE_PORT + 50)).log" 2>&1 &
pids+=($!)
for p in 0 1 10 11 20 21 22 30 31 40 41 50; do wait_ready "http://127.0.0.1:$((BASE_PORT + p))/healthz" "port $((BASE_PORT + p))"; done

cat <<MSG

$(cat "$PLANT_DIR/init.txt" | sed -n '1,10p')

The plant is running (logs in $PLANT_DIR/logs):
  API and portal   http://127.0.0.1:$BASE_PORT/ and http://127.0.0.1:$((BASE_PORT + 1))/
  ACME directory   http://127.0.0.1:$BASE_PORT/acme/directory
  admin key        $PLANT_DIR/etc/admin.key
  CDN (Varnish)    $PUBLIC/ocsp/  (3 responders)   $PUBLIC/crl/<issuer-id>/crls.json  (2 origins)
  presigners       http://127.0.0.1:$((BASE_PORT + 10))/metrics  http://127.0.0.1:$((BASE_PORT + 11))/metrics
  crlgens          http://127.0.0.1:$((BASE_PORT + 40))/metrics  http://127.0.0.1:$((BASE_PORT + 41))/metrics
  watch            http://127.0.0.1:$((BASE_PORT + 50))/metrics  (report: $BIN watch report --config $WATCH_CFG)
  CT logs          $CT_NOTE
  PostgreSQL       $DB_URL
  Redis Cluster    $CLUSTER_URL
  mail             $PLANT_DIR/mail/
Stop everything with Ctrl-C.
MSG
# Ctrl-C reaches this shell and every process of the plant at once: the
# processes may exit first, so give the shell's own trap a moment before
# reporting an exit as a failure.
trap 'interrupted=1' INT TERM
wait -n "${pids[@]}" || true
[ -n "${interrupted:-}" ] || sleep 0.5
if [ -z "${interrupted:-}" ]; then
  log "a process exited on its own; see $PLANT_DIR/logs/"
fi

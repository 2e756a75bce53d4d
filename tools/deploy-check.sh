#!/usr/bin/env bash
# make deploy-check: builds the container image from the Dockerfile with podman
# (no Docker engine here), runs it and smoke-tests it from the host (health,
# an inference, non-root, drain on SIGTERM), checks /metrics with promtool and
# a real Prometheus scrape, and validates the Kubernetes manifests offline.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${CONVD_DEPLOY_WORK:-/var/tmp/convd-deploy}
image=${CONVD_IMAGE:-localhost/convd:latest}
port=${CONVD_DEPLOY_PORT:-18080}
prom_port=${CONVD_PROM_PORT:-19090}
name=convd-deploy-check
mkdir -p "$work"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "deploy-check: FAIL: $*" >&2; exit 1; }

step "packages"
tools/install-deps.sh podman runc debootstrap prometheus python3-venv
# kubectl (for `kubectl kustomize`) from Debian unless one is installed already
command -v kubectl >/dev/null || tools/install-deps.sh kubernetes-client

# Podman set-up that works on this machine: runc (crun fails on its mixed
# cgroup set-up), cgroupfs, explicit ulimits (root cannot raise
# RLIMIT_NOFILE/NPROC here), overlay storage under the work folder.
nofile=$(ulimit -Hn)
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"
podman() { command podman --cgroup-manager=cgroupfs "$@"; }

step "base image (debootstrap minbase bookworm, imported as debian:bookworm and debian:bookworm-slim)"
if ! podman image exists docker.io/library/debian:bookworm-slim; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  # slim it the way debian:*-slim is slimmed
  rm -rf "$work/rootfs"/usr/share/{doc,man,info,locale}/* "$work/rootfs"/var/cache/apt/*.bin \
    "$work/rootfs"/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | podman import - docker.io/library/debian:bookworm >/dev/null
  podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
  rm -rf "$work/rootfs"
fi

step "podman build"
podman build --pull=never --network=host -t "$image" . 2>&1 | tail -5
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $((size / 1000000)) MB"
[ "$size" -lt 200000000 ] || fail "image is $((size / 1000000)) MB, over 200 MB"
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ -n "$user" ] && [ "${user%%:*}" != "0" ] && [ "${user%%:*}" != "root" ] || fail "image user is '$user'"

step "run the container on 127.0.0.1:$port"
podman rm -f "$name" >/dev/null 2>&1 || true
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  [ -n "${prom_pid:-}" ] && kill "$prom_pid" 2>/dev/null || true
}
trap cleanup EXIT
# --cpus=1: the server must size itself from the cgroup quota, not the host's CPUs
podman run -d --name "$name" --network=bridge -p "127.0.0.1:$port:8080" --cpus=1 \
  -e CONVD_DRAIN_TIMEOUT_MS=20000 --read-only --cap-drop=ALL --security-opt=no-new-privileges "$image" >/dev/null
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { podman logs "$name" | tail; fail "/healthz"; }
echo "healthz: 200"
# read the whole log first: with pipefail, `podman logs | grep -q` fails when
# grep exits at the first match and podman gets SIGPIPE
logs=$(podman logs "$name" 2>&1)
[[ "$logs" == *"workers=1 threads-per-job=1 (cpus=1)"* ]] ||
  { head -3 <<<"$logs"; fail "the server did not size itself from the 1-CPU quota"; }
echo "sized from the CPU quota: workers=1 (cpus=1)"
uid=$(podman exec "$name" id -u)
[ "$uid" != "0" ] || fail "the server runs as root"
echo "runs as uid $uid"
podman exec "$name" convd healthcheck || fail "convd healthcheck inside the container"

step "one inference from the host"
curl -fsS -H 'Content-Type: application/json' \
  -d '{"input": {"init": "random", "seed": 1, "shape": [1, 3, 128, 128]}}' \
  "http://127.0.0.1:$port/v1/models/separable_classic/infer?encoding=b64" >"$work/infer.json" ||
  fail "inference request"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["output"]["shape"]==[1,10,128,128], d["output"]["shape"]; print("output", d["output"]["shape"], "flops", d["stats"]["flops"])' "$work/infer.json"

step "promtool check metrics"
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
echo "promtool: ok"

step "a real Prometheus scrapes it"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: convd
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
rm -rf "$work/prometheus-data"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus-data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
found=""
for _ in $(seq 1 60); do
  sleep 1
  if curl -fsS "http://127.0.0.1:$prom_port/api/v1/query?query=convd_requests_total" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r else 1)'; then
    found=yes
    break
  fi
done
[ -n "$found" ] || { tail "$work/prometheus.log"; fail "Prometheus never returned convd_requests_total"; }
echo "prometheus query convd_requests_total: $(curl -fsS "http://127.0.0.1:$prom_port/api/v1/query?query=sum(convd_requests_total)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')"
kill "$prom_pid"; wait "$prom_pid" 2>/dev/null || true; prom_pid=""

step "SIGTERM during a request drains it"
# a deliberately slow request: a 3x3 256->256 convolution at 96x96 on the direct kernel
slow='{"layer": {"type": "Conv2d", "in_channels": 256, "out_channels": 256, "kernel_size": 3, "padding": 1, "algorithm": "direct"},
       "weight": {"init": "random", "seed": 1}, "bias": {"init": "random", "seed": 2},
       "input": {"init": "random", "seed": 3, "shape": [1, 256, 96, 96]}}'
curl -sS -o "$work/slow.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$slow" \
  "http://127.0.0.1:$port/v1/conv2d?encoding=b64" >"$work/slow.status" &
curl_pid=$!
sleep 1
podman kill --signal TERM "$name" >/dev/null
wait "$curl_pid" || true
status=$(cat "$work/slow.status")
[ "$status" = "200" ] || fail "the request in flight at SIGTERM got '$status'"
echo "request in flight at SIGTERM: $status"
for _ in $(seq 1 100); do
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = "false" ] && break
  sleep 0.2
done
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = "0" ] || { podman logs "$name" | tail; fail "exit code $code after SIGTERM"; }
echo "container exited $code after draining"
podman rm -f "$name" >/dev/null

step "Kubernetes manifests"
if [ ! -x "$work/venv/bin/kubernetes-validate" ]; then
  /usr/bin/python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q kubernetes-validate
fi
"$work/venv/bin/kubernetes-validate" --strict deploy/kubernetes/{configmap,models-pvc,deployment,service,hpa,pdb}.yaml
kubectl kustomize deploy/kubernetes >"$work/rendered.yaml"
"$work/venv/bin/kubernetes-validate" --strict "$work/rendered.yaml"
echo "kustomize rendered $(grep -c '^kind:' "$work/rendered.yaml") objects"

if command -v systemd-analyze >/dev/null; then
  step "systemd unit"
  sed "s#/usr/local/bin/convd#$root/build/convd#" deploy/convd.service >"$work/convd.service"
  systemd-analyze verify "$work/convd.service" 2>&1 | grep -v "Documentation=" || true
fi

printf '\ndeploy-check: all checks passed\n'

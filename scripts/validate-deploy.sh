#!/usr/bin/env bash
# Validates the deployment files under deploy/ (or under the directory given
# as the first argument, laid out the same way: kubernetes/ and docker/).
#
#   1. Every manifest in kubernetes/ against the Kubernetes JSON schemas, in
#      strict mode (unknown fields are errors), with kubernetes-validate from
#      PyPI, which bundles the schemas: after its one-time install into .venv
#      this runs offline. A kind or apiVersion it has no schema for fails too.
#   2. The manifests against each other and against the sgbridge.toml in the
#      ConfigMap: the TOML parses, ports, probe ports, Secret keys and mount
#      paths agree, the termination grace covers the shutdown delay and grace,
#      the PodDisruptionBudget lets one replica be evicted, the kustomization
#      lists what exists. deploy/docker/sgbridge.toml parses and holds no
#      credential.
#   3. If target/debug/sgbridge exists, `sgbridge check-config` on both TOML
#      files (secret files replaced by placeholders in a scratch directory).
#      Reported but not fatal unless STRICT_CHECK_CONFIG=1, while check-config
#      is still learning server.admin_listen, [log] and [audit].
#
# Exits non-zero when a manifest is invalid or a cross-check fails.
#
#   scripts/validate-deploy.sh                  # deploy/
#   scripts/validate-deploy.sh /tmp/copy/deploy # another copy
#   KUBE_VERSION=1.33.0 scripts/validate-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# kubernetes-validate, pinned; 1.37.0 bundles the schemas of Kubernetes 1.25
# to 1.37 (strict and non-strict) and needs no network once installed.
KV_VERSION=1.37.0
# The Kubernetes version validated against: the newest one bundled.
KUBE_VERSION="${KUBE_VERSION:-1.37.0}"
STRICT_CHECK_CONFIG="${STRICT_CHECK_CONFIG:-0}"

DEPLOY_DIR="${1:-deploy}"
K8S_DIR="$DEPLOY_DIR/kubernetes"
DOCKER_TOML="$DEPLOY_DIR/docker/sgbridge.toml"
SGBRIDGE_BIN="${SGBRIDGE_BIN:-target/debug/sgbridge}"

fail=0
problem() { echo "FAIL: $*"; fail=1; }

echo "== validator: kubernetes-validate $KV_VERSION in .venv"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PY=.venv/bin/python
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "FAIL: .venv's Python is older than 3.11 (tomllib is needed): $("$PY" --version)"
  exit 1
fi
installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)
if [ "$installed" != "$KV_VERSION" ]; then
  .venv/bin/pip install --quiet "kubernetes-validate==$KV_VERSION"
fi

manifests=()
while IFS= read -r -d '' f; do
  case "$(basename "$f")" in
    kustomization.yaml | kustomization.yml | Kustomization) ;; # not an API object
    *) manifests+=("$f") ;;
  esac
done < <(find "$K8S_DIR" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0 | sort -z)
if [ "${#manifests[@]}" -eq 0 ]; then
  echo "FAIL: no manifests under $K8S_DIR"
  exit 1
fi

echo "== schemas: Kubernetes $KUBE_VERSION, strict, ${#manifests[@]} files"
for f in "${manifests[@]}"; do # one at a time: a file that is not YAML stops the validator
  rc=0
  out=$(.venv/bin/kubernetes-validate --strict -k "$KUBE_VERSION" "$f" 2>&1) || rc=$?
  echo "$out"
  # WARN: no schema for a kind/apiVersion (a typo, or not a built-in kind).
  if [ "$rc" -ne 0 ] || grep -qE '^(WARN|ERROR|FATAL)' <<<"$out"; then
    problem "$f: schema validation (kubernetes-validate exit $rc)"
  fi
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== cross-checks and the embedded sgbridge.toml"
if ! "$PY" - "$K8S_DIR" "$DOCKER_TOML" "$scratch" <<'PY'; then
import os, sys, tomllib, yaml

k8s_dir, docker_toml, scratch = sys.argv[1:4]
errors = []
def err(msg):
    errors.append(msg)
    print("FAIL:", msg)

docs = {}  # (kind, name) -> (file, doc)
by_file = {}
for root, _, files in os.walk(k8s_dir):
    for fn in sorted(files):
        if not fn.endswith((".yaml", ".yml", ".json")):
            continue
        path = os.path.join(root, fn)
        try:
            with open(path) as f:
                items = [d for d in yaml.safe_load_all(f) if d]
        except yaml.YAMLError as e:
            err(f"{path}: not YAML: {e}")
            items = []
        by_file[os.path.relpath(path, k8s_dir)] = items
        if fn.startswith("kustomization."):
            continue
        for d in items:
            kind, name = d.get("kind"), (d.get("metadata") or {}).get("name")
            if not kind or not name:
                err(f"{path}: a document without kind or metadata.name")
                continue
            if (kind, name) in docs:
                err(f"{path}: {kind}/{name} is defined twice")
            docs[(kind, name)] = (path, d)

def one(kind):
    found = [d for (k, _), (_, d) in docs.items() if k == kind]
    if not found:
        err(f"no {kind} in {k8s_dir}")
    return found

def port_of(addr, key):
    try:
        return int(str(addr).rsplit(":", 1)[1])
    except (IndexError, ValueError):
        err(f"sgbridge.toml: {key} = {addr!r} has no port")
        return None

def load_toml(text, where):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        err(f"{where}: TOML does not parse: {e}")
        return None

# Kustomization: every listed resource exists; what it leaves out is the Secret only.
for rel, items in by_file.items():
    if not os.path.basename(rel).startswith("kustomization."):
        continue
    listed = set((items[0] or {}).get("resources", [])) if items else set()
    for r in sorted(listed):
        if r not in by_file:
            err(f"{rel}: lists {r}, which does not exist")
    for other, its in by_file.items():
        if other in listed or other == rel:
            continue
        if any(d.get("kind") != "Secret" for d in its):
            err(f"{rel}: does not list {other}")

deployments = one("Deployment")
for dep in deployments:
    dname = dep["metadata"]["name"]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    sel = spec["selector"].get("matchLabels", {})
    if any(pod_labels.get(k) != v for k, v in sel.items()):
        err(f"Deployment {dname}: selector {sel} does not match the pod labels {pod_labels}")
    c = pod["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}

    # The config file: a ConfigMap key mounted where --config points.
    args = c.get("args", [])
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    toml_text, cm_name = None, None
    for vname, m in mounts.items():
        v = volumes.get(vname, {})
        if "configMap" in v and m.get("mountPath") == config_path:
            cm_name = v["configMap"]["name"]
            key = m.get("subPath")
            cm = docs.get(("ConfigMap", cm_name))
            if cm is None:
                err(f"Deployment {dname}: volume {vname} names ConfigMap {cm_name}, not defined here")
            elif key not in (cm[1].get("data") or {}):
                err(f"ConfigMap {cm_name}: no key {key!r} (the Deployment's subPath)")
            else:
                toml_text = cm[1]["data"][key]
    if toml_text is None:
        err(f"Deployment {dname}: --config {config_path} is not a mounted ConfigMap key")
        continue
    cfg = load_toml(toml_text, f"ConfigMap {cm_name}")
    if cfg is None:
        continue
    with open(os.path.join(scratch, "configmap-sgbridge.toml"), "w") as f:
        f.write(toml_text)
    print(f"ok: ConfigMap {cm_name}'s sgbridge.toml parses")

    server = cfg.get("server", {})
    listen = port_of(server.get("listen", "127.0.0.1:8080"), "server.listen")
    if listen != ports.get("http"):
        err(f"server.listen port {listen} is not the container port named http ({ports.get('http')})")
    admin = server.get("admin_listen")
    if admin is None:
        err("server.admin_listen is not set, but the probes use the admin port")
    elif port_of(admin, "server.admin_listen") != ports.get("admin"):
        err(f"server.admin_listen port is not the container port named admin ({ports.get('admin')})")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", None)):
        g = (c.get(probe) or {}).get("httpGet")
        if not g:
            err(f"Deployment {dname}: no httpGet {probe}")
            continue
        if g.get("port") not in ("admin", ports.get("admin")):
            err(f"{probe}: port {g.get('port')} is not the admin port")
        if path and g.get("path") != path:
            err(f"{probe}: path {g.get('path')} is not {path}")

    # Credentials: no development ones; every secret_file comes from the Secret.
    auth = cfg.get("auth", {})
    for key in ("cf_bearer_tokens", "gcore_api_keys"):
        if auth.get(key, ["dev"] if key == "cf_bearer_tokens" else []):
            err(f"sgbridge.toml: auth.{key} must be [] (the default holds a development credential)")
    secret_mounts = {m["mountPath"].rstrip("/"): volumes[n]["secret"]["secretName"]
                     for n, m in mounts.items() if "secret" in volumes.get(n, {})}
    def secret_keys(name):
        s = docs.get(("Secret", name))
        if s is None:
            err(f"Secret {name} is not defined in {k8s_dir}")
            return set()
        return set((s[1].get("stringData") or {})) | set((s[1].get("data") or {}))
    entries = [("auth.cf_tokens", e) for e in auth.get("cf_tokens", [])] + \
              [("auth.gcore_keys", e) for e in auth.get("gcore_keys", [])]
    if not entries:
        err("sgbridge.toml: no credentials in auth.cf_tokens or auth.gcore_keys")
    rewritten = toml_text
    for what, e in entries:
        if "secret" in e:
            err(f"{what} {e.get('name')}: a secret written in the ConfigMap; use secret_file")
        path = e.get("secret_file")
        if not path:
            continue
        d, key = os.path.split(path)
        if d not in secret_mounts:
            err(f"{what} {e.get('name')}: {path} is not in a mounted Secret ({sorted(secret_mounts)})")
        elif key not in secret_keys(secret_mounts[d]):
            err(f"{what} {e.get('name')}: Secret {secret_mounts[d]} has no key {key!r}")
        stand_in = os.path.join(scratch, "secrets", key)
        os.makedirs(os.path.dirname(stand_in), exist_ok=True)
        with open(stand_in, "w") as f:
            f.write(f"validate-deploy-placeholder-{key}\n")
        rewritten = rewritten.replace(f'"{path}"', f'"{stand_in}"')
    with open(os.path.join(scratch, "configmap-check.toml"), "w") as f:
        f.write(rewritten)
    for env in c.get("env", []):
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref and ref["key"] not in secret_keys(ref["name"]):
            err(f"env {env['name']}: Secret {ref['name']} has no key {ref['key']!r}")
    backend = cfg.get("backend", {})
    if backend.get("kind") == "gcore":
        var = backend.get("gcore", {}).get("api_key_env", "GCORE_API_KEY")
        if var not in {e["name"] for e in c.get("env", [])}:
            err(f"backend.gcore.api_key_env = {var}, which the Deployment does not set")
    if backend.get("kind", "embedded") == "embedded" and spec.get("replicas", 1) not in (0, 1):
        err(f"Deployment {dname}: replicas {spec.get('replicas')} with the in-memory embedded backend")

    # Shutdown: the kubelet must wait out the delay and the grace.
    delay = server.get("shutdown_delay_s", 5)
    grace = server.get("shutdown_grace_s", 0) or cfg.get("wait", {}).get("deadline_s", 60) + 10
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps < delay + grace:
        err(f"terminationGracePeriodSeconds {tgps} < shutdown_delay_s {delay} + shutdown grace {grace}")
    else:
        print(f"ok: terminationGracePeriodSeconds {tgps} >= shutdown delay {delay} + grace {grace}")

    # Services and the PodDisruptionBudget select this pod, by port names it has.
    for (kind, name), (_, d) in docs.items():
        if kind == "Service":
            s = d["spec"]
            if any(pod_labels.get(k) != v for k, v in (s.get("selector") or {}).items()):
                err(f"Service {name}: selector does not match Deployment {dname}'s pods")
            for p in s.get("ports", []):
                t = p.get("targetPort", p["port"])
                if t not in ports and t not in ports.values():
                    err(f"Service {name}: targetPort {t} is no container port")
        if kind == "PodDisruptionBudget":
            s = d["spec"]
            if any(pod_labels.get(k) != v for k, v in s["selector"].get("matchLabels", {}).items()):
                err(f"PodDisruptionBudget {name}: selector does not match Deployment {dname}'s pods")
            if "minAvailable" in s and str(s["minAvailable"]) not in ("0", "0%") and spec.get("replicas", 1) <= 1:
                err(f"PodDisruptionBudget {name}: minAvailable {s['minAvailable']} with one replica blocks every drain")

# The image's default config: parses, listens on all addresses, no credential of its own.
if os.path.exists(docker_toml):
    with open(docker_toml) as f:
        text = f.read()
    d = load_toml(text, docker_toml)
    if d is not None:
        a = d.get("auth", {})
        if a.get("cf_bearer_tokens") != [] or a.get("gcore_api_keys") != []:
            err(f"{docker_toml}: auth.cf_bearer_tokens and auth.gcore_api_keys must be []")
        for e in a.get("cf_tokens", []) + a.get("gcore_keys", []):
            if "secret" in e:
                err(f"{docker_toml}: credential {e.get('name')} written in the file")
        if not a.get("cf_tokens") and not a.get("gcore_keys"):
            err(f"{docker_toml}: no credential from the environment or a file")
        if d.get("server", {}).get("admin_listen") is None:
            err(f"{docker_toml}: server.admin_listen is not set")
        if not errors:
            print(f"ok: {docker_toml} parses and holds no credential")
else:
    err(f"{docker_toml} does not exist")

sys.exit(1 if errors else 0)
PY
  problem "cross-checks"
fi

echo "== sgbridge check-config"
check_config() { # label, config, env assignments...
  local label=$1 config=$2 out rc=0
  shift 2
  out=$(env "$@" "$SGBRIDGE_BIN" check-config --config "$config" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok: $label"
  elif [ "$STRICT_CHECK_CONFIG" = 1 ]; then
    problem "check-config $label: $out"
  else
    echo "check-config FAILED, not fatal yet (STRICT_CHECK_CONFIG=1 makes it so): $label: $out"
  fi
}
if [ ! -x "$SGBRIDGE_BIN" ]; then
  echo "skipped: $SGBRIDGE_BIN does not exist (cargo build first)"
elif [ ! -f "$scratch/configmap-check.toml" ]; then
  echo "skipped: no sgbridge.toml could be extracted from the ConfigMap"
else
  check_config "ConfigMap sgbridge.toml (secret files replaced by placeholders)" \
    "$scratch/configmap-check.toml"
  if [ -f "$DOCKER_TOML" ]; then
    check_config "$DOCKER_TOML (SGBRIDGE_CF_TOKEN and SGBRIDGE_GCORE_KEY set)" "$DOCKER_TOML" \
      SGBRIDGE_CF_TOKEN=validate-deploy-cf SGBRIDGE_GCORE_KEY=validate-deploy-gcore
    # Without the variables it must refuse, naming one of them.
    rc=0
    out=$(env -u SGBRIDGE_CF_TOKEN -u SGBRIDGE_GCORE_KEY "$SGBRIDGE_BIN" check-config --config "$DOCKER_TOML" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] && grep -qE 'SGBRIDGE_(CF_TOKEN|GCORE_KEY)' <<<"$out"; then
      echo "ok: $DOCKER_TOML is refused without credentials: $out"
    elif [ "$STRICT_CHECK_CONFIG" = 1 ]; then
      problem "$DOCKER_TOML without credentials: expected a refusal naming SGBRIDGE_CF_TOKEN, got exit $rc: $out"
    else
      echo "check-config FAILED, not fatal yet: $DOCKER_TOML without credentials: expected a refusal naming SGBRIDGE_CF_TOKEN, got exit $rc: $out"
    fi
  fi
fi

if [ "$fail" -ne 0 ]; then
  echo "== validate-deploy: FAILED"
  exit 1
fi
echo "== validate-deploy: ok"

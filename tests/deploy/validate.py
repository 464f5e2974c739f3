#!/usr/bin/python3
"""Checks the Kubernetes deployment in deploy/ without a cluster.

    tests/deploy/validate.py [SOURCE_ROOT] [--no-kubectl] [--no-schema] [--no-self-test] [-v]

What it checks (stdlib + PyYAML; node for the schema check):

  * every YAML file under deploy/ parses (multi-document), every object has a
    known apiVersion/kind, a name and the fields its kind needs;
  * kustomizations: listed resources and patches exist, patch targets exist,
    the images transformer names the container's image, the example Secret
    is not a resource;
  * each kustomization (deploy/base, deploy/overlays/*) rendered statically
    (resources + strategic-merge patches), and again with `kubectl kustomize`
    when kubectl is on PATH (skipped otherwise), then: selectors match the
    pod labels, Service ports reach container ports, the StatefulSet's
    serviceName is a headless Service publishing not-ready addresses, probes
    (/readyz, /livez, startup) hit the HTTP port, the PDB keeps a quorum, the
    NetworkPolicy keeps the raft port to gcsd pods, env and ports agree, the
    pod runs non-root on a read-only root;
  * the container's startup script, taken from the manifest (after the
    $(VAR) expansion Kubernetes applies to commands), is run with /bin/sh for
    ordinals 0..4 against a fake gcsd; the flags and environment gcsd would
    see are parsed the way gcs/config.c does, and --id, --peers, --join,
    --raft-advertise and --advertise are compared with what they must be;
  * the overlays dev (1 member), prod (3, members on distinct nodes, with the
    backup CronJob of components/backup) and prod-5 (5) exist; components
    and images transformers are applied by the static rendering too;
  * the NetworkPolicy admits the client port only from gcsd pods and pods
    labelled gcsd-client=true; every client workload (the backup CronJob,
    the example Jobs, the RayCluster head) carries that label, uses gcsd's
    password Secret and the client Service, and the StatefulSet's image;
  * every rendered object (static and kubectl renderings) and every example
    validates against the Kubernetes API schemas: tests/deploy/schema/
    check.cjs with the npm package kubernetes-models (pinned in its
    package-lock.json, installed by scripts/deps.sh into
    ~/.cache/gcsd/k8s-schema or $GCSD_SCHEMA_DIR), unknown fields rejected
    as kubectl's strict validation does. The RayCluster (a CRD) has no
    schema there and is skipped with a note;
  * deploy/examples/raycluster.yaml points KubeRay at the client Service with
    the same password Secret; the Dockerfile builds from deps.sh with meson
    and ships the runtime libraries; docs/kubernetes.md names existing paths;
  * self-test: broken copies of deploy/ (in a temp dir) must each be
    rejected, so the checks above cannot silently stop checking.

Exits 1 with one line per problem, 0 when everything holds.
"""

import copy
import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.stderr.write("validate.py: PyYAML is missing: apt-get install python3-yaml\n")
    sys.exit(1)

KNOWN_KINDS = {
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "PersistentVolumeClaim"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("ray.io/v1", "RayCluster"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kustomize.config.k8s.io/v1alpha1", "Component"),
}

# The overlays deploy/overlays must have, with their member counts.
EXPECTED_OVERLAYS = {"dev": 1, "prod": 3, "prod-5": 5}

# Pods with this label may reach the client port (the NetworkPolicy's rule).
CLIENT_LABEL = ("gcsd-client", "true")

# Required fields per kind (dotted paths below the object).
REQUIRED = {
    "StatefulSet": ["spec.replicas", "spec.serviceName", "spec.selector.matchLabels",
                    "spec.template.metadata.labels", "spec.template.spec.containers",
                    "spec.volumeClaimTemplates"],
    "Service": ["spec.ports", "spec.selector"],
    "PodDisruptionBudget": ["spec.selector.matchLabels"],
    "NetworkPolicy": ["spec.podSelector", "spec.policyTypes", "spec.ingress"],
    "RayCluster": ["spec.headGroupSpec.template.spec.containers",
                   "spec.workerGroupSpecs", "spec.gcsFaultToleranceOptions.redisAddress"],
    "CronJob": ["spec.schedule", "spec.jobTemplate.spec.template.spec.containers"],
    "Job": ["spec.template.spec.containers"],
    "PersistentVolumeClaim": ["spec.accessModes", "spec.resources.requests.storage"],
}

# Variables the startup script reads that are not gcsd flag twins.
SCRIPT_VARS = {"GCSD_INITIAL_MEMBERS", "GCSD_REPLICAS", "GCSD_PEER_SERVICE",
               "GCSD_CLIENT_SERVICE", "GCSD_CLUSTER_DOMAIN", "GCSD_JOIN_ADDRESS",
               "GCSD_SURVEY_RETRIES", "GCSD_SURVEY_PAUSE"}
# Twins the script decides per pod: never set them in the manifest.
PER_POD_TWINS = {"GCSD_ID", "GCSD_PEERS", "GCSD_JOIN", "GCSD_RAFT_ADVERTISE",
                 "GCSD_ADVERTISE"}

# Flags of gcsd (name -> (env twin, takes an argument)); read from
# gcs/config.c when possible, this copy is the fallback.
FALLBACK_FLAGS = {
    "data-dir": ("GCSD_DATA_DIR", True), "bind": ("GCSD_BIND", True),
    "port": ("GCSD_PORT", True), "raft-port": ("GCSD_RAFT_PORT", True),
    "raft-advertise": ("GCSD_RAFT_ADVERTISE", True), "id": ("GCSD_ID", True),
    "peers": ("GCSD_PEERS", True), "requirepass": ("GCSD_REQUIREPASS", True),
    "protected-mode": ("GCSD_PROTECTED_MODE", True), "log-level": ("GCSD_LOG_LEVEL", True),
    "maxclients": ("GCSD_MAXCLIENTS", True),
    "proto-max-bulk-len": ("GCSD_PROTO_MAX_BULK_LEN", True),
    "max-args": ("GCSD_MAX_ARGS", True), "map-size": ("GCSD_MAP_SIZE", True),
    "election-timeout": ("GCSD_ELECTION_TIMEOUT", True),
    "heartbeat-timeout": ("GCSD_HEARTBEAT_TIMEOUT", True),
    "snapshot-threshold": ("GCSD_SNAPSHOT_THRESHOLD", True),
    "advertise": ("GCSD_ADVERTISE", True), "join": ("GCSD_JOIN", True),
    "redirect": ("GCSD_REDIRECT", False), "leader-wait-ms": ("GCSD_LEADER_WAIT_MS", True),
    "http-port": ("GCSD_HTTP_PORT", True), "help": (None, False), "version": (None, False),
}

# -dev package in scripts/deps.sh -> the library package the image needs.
RUNTIME_LIBS = {
    "libuv1-dev": "libuv1", "liblmdb-dev": "liblmdb0", "libhiredis-dev": "libhiredis0.14",
    "libprotobuf-c-dev": "libprotobuf-c1", "liblz4-dev": "liblz4-1",
}

TEST_NS = "gcsd-test-ns"
TEST_PASSWORD = "s3cret-from-the-secret"
ORDINALS = 5


class Report:
    def __init__(self, verbose=False, quiet=False):
        self.errors = []
        self.notes = []
        self.checks = 0
        self.verbose = verbose
        self.quiet = quiet

    def check(self, cond, where, msg):
        self.checks += 1
        if not cond:
            self.errors.append("%s: %s" % (where, msg))
        return bool(cond)

    def fail(self, where, msg):
        self.check(False, where, msg)

    def note(self, msg):
        self.notes.append(msg)
        if self.verbose and not self.quiet:
            print("  note: " + msg)


# ----------------------------------------------------------------- helpers

def get(obj, path, default=None):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def rel(root, path):
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


def is_kustomization_file(path):
    return os.path.basename(path) in ("kustomization.yaml", "kustomization.yml", "Kustomization")


def load_yaml_docs(path, rep, where):
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        rep.fail(where, "cannot parse: %s" % str(e).replace("\n", " "))
        return []
    for i, d in enumerate(docs):
        rep.check(isinstance(d, dict), "%s#%d" % (where, i), "document is not a mapping")
    return [d for d in docs if isinstance(d, dict)]


def labels_match(selector, labels):
    """selector: matchLabels-style dict (or a LabelSelector with matchLabels)."""
    if selector is None:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        if selector.get("matchExpressions"):
            return False  # not used here; treat as unverifiable
        selector = selector.get("matchLabels") or {}
    if not selector:
        return False  # an empty selector selects everything: not "our pods"
    return all(labels.get(k) == v for k, v in selector.items())


def k8s_expand(s, env):
    """Kubernetes' $(VAR) expansion of command, args and env values: $$ is a
    literal $, $(NAME) of a defined NAME becomes its value, anything else
    stays as written."""
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "$" and i + 1 < len(s):
            n = s[i + 1]
            if n == "$":
                out.append("$")
                i += 2
                continue
            if n == "(":
                j = s.find(")", i + 2)
                if j >= 0:
                    name = s[i + 2:j]
                    if name in env:
                        out.append(env[name])
                        i = j + 1
                        continue
                    out.append(s[i:j + 1])
                    i = j + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def gcsd_flags(root, rep):
    path = os.path.join(root, "gcs", "config.c")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        rep.note("gcs/config.c not found: using the built-in list of gcsd flags")
        return dict(FALLBACK_FLAGS)
    flags = {}
    for m in re.finditer(r'\{\s*OPT_\w+\s*,\s*"([a-z0-9-]+)"\s*,\s*(?:"(GCSD_\w+)"|NULL)\s*,'
                         r'\s*(?:"[^"]*"|(NULL))', text):
        flags[m.group(1)] = (m.group(2), m.group(3) is None)
    if len(flags) < 10 or "peers" not in flags or "join" not in flags:
        rep.note("could not read gcsd's flag table from gcs/config.c: using the built-in list")
        return dict(FALLBACK_FLAGS)
    return flags


def gcsd_effective_config(argv, env, flags):
    """The settings gcsd would run with: environment twins first, then flags
    (getopt_long: --name VALUE or --name=VALUE), as gcs/config.c does.
    Returns (settings dict flag-name -> value, list of errors)."""
    errs = []
    settings = {}
    for name, (twin, _arg) in flags.items():
        if twin and env.get(twin, "") != "":
            settings[name] = env[twin]
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--"):
            errs.append("unexpected argument %r" % a)
            i += 1
            continue
        name, eq, val = a[2:].partition("=")
        if name not in flags:
            errs.append("unknown option --%s" % name)
            i += 1
            continue
        if flags[name][1]:
            if not eq:
                if i + 1 >= len(argv):
                    errs.append("--%s needs a value" % name)
                    break
                val = argv[i + 1]
                i += 1
        else:
            val = "yes"
        settings[name] = val
        i += 1
    if settings.get("join") and settings.get("peers"):
        errs.append("--join and --peers exclude each other (gcsd refuses to start)")
    mid = settings.get("id", "1")
    if not re.fullmatch(r"[1-9][0-9]*", mid):
        errs.append("--id %r is not an integer >= 1" % mid)
    if settings.get("peers"):
        ids = []
        for item in settings["peers"].split(","):
            pid, eq, addr = item.partition("=")
            if not eq or ":" not in addr:
                errs.append("peer %r is not ID=HOST:PORT" % item)
            ids.append(pid)
        if len(set(ids)) != len(ids):
            errs.append("--peers lists an id twice")
        if mid not in ids:
            errs.append("--peers does not list this member's id %s" % mid)
    return settings, errs


# ------------------------------------------------------------- tree model

class Tree:
    """The YAML under deploy/: kustomizations, patches, plain resources."""

    def __init__(self, deploy_dir, rep):
        self.dir = deploy_dir
        self.files = {}          # path -> [docs]
        self.kustomizations = {}  # dir -> (path, doc)
        self.patch_files = set()
        for d, subdirs, names in os.walk(deploy_dir):
            subdirs.sort()
            for n in sorted(names):
                if n.endswith((".yaml", ".yml")) or n == "Kustomization":
                    p = os.path.join(d, n)
                    self.files[p] = load_yaml_docs(p, rep, rel(os.path.dirname(deploy_dir), p))
        for p, docs in self.files.items():
            if is_kustomization_file(p) and docs:
                self.kustomizations[os.path.dirname(p)] = (p, docs[0])
        for d, (p, k) in self.kustomizations.items():
            for ent in (k.get("patches") or []):
                if isinstance(ent, dict) and ent.get("path"):
                    self.patch_files.add(os.path.normpath(os.path.join(d, ent["path"])))
            for ent in (k.get("patchesStrategicMerge") or []):
                if isinstance(ent, str):
                    self.patch_files.add(os.path.normpath(os.path.join(d, ent)))

    def where(self, path):
        return rel(os.path.dirname(self.dir), path)


def check_objects(tree, rep):
    """Per-object checks on every YAML document."""
    for p, docs in tree.files.items():
        w = tree.where(p)
        for i, d in enumerate(docs):
            wi = "%s#%d" % (w, i) if len(docs) > 1 else w
            api, kind = d.get("apiVersion"), d.get("kind")
            if is_kustomization_file(p):
                rep.check(kind in (None, "Kustomization", "Component"), wi,
                          "kustomization file of kind %r" % kind)
                if api is not None:
                    rep.check((api, kind or "Kustomization") in KNOWN_KINDS, wi,
                              "unknown kustomization apiVersion %r" % api)
                continue
            if not rep.check((api, kind) in KNOWN_KINDS, wi,
                             "unknown apiVersion/kind %s/%s" % (api, kind)):
                continue
            rep.check(bool(get(d, "metadata.name")), wi, "%s without metadata.name" % kind)
            if os.path.normpath(p) in tree.patch_files:
                continue  # a partial object: only identity matters
            for field in REQUIRED.get(kind, []):
                v = get(d, field)
                rep.check(v is not None and v != [] and v != {}, wi,
                          "%s %s: required field %s missing" % (kind, get(d, "metadata.name"), field))
            if kind == "Secret":
                rep.check(bool(d.get("data") or d.get("stringData")), wi, "Secret without data")
            if kind == "PodDisruptionBudget":
                rep.check(("maxUnavailable" in d.get("spec", {})) != ("minAvailable" in d.get("spec", {})),
                          wi, "PodDisruptionBudget needs exactly one of maxUnavailable/minAvailable")
            if kind == "StatefulSet":
                for c in get(d, "spec.template.spec.containers", []) or []:
                    rep.check(bool(c.get("name")) and bool(c.get("image")), wi,
                              "container without name or image")


def smp_merge(base, patch):
    """A strategic-merge patch as kustomize applies it to the fields used
    here: maps merge, lists of named maps merge by name, other lists and
    scalars are replaced, null deletes."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp_merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list)
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for j, b in enumerate(out):
                if b["name"] == item["name"]:
                    out[j] = smp_merge(b, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def render_static(tree, kdir, rep, seen=None, base_objs=None):
    """Resources of the kustomization in kdir with its components, patches
    and images applied (for a Component: on top of base_objs)."""
    seen = seen or set()
    if kdir in seen:
        rep.fail(tree.where(kdir), "kustomization cycle")
        return []
    seen = seen | {kdir}
    kpath, k = tree.kustomizations[kdir]
    w = tree.where(kpath)
    objs = list(base_objs or [])
    for r in (k.get("resources") or []):
        p = os.path.normpath(os.path.join(kdir, r))
        if os.path.isdir(p):
            if not rep.check(p in tree.kustomizations, w,
                             "resource %s is a directory without a kustomization" % r):
                continue
            objs.extend(render_static(tree, p, rep, seen))
        elif rep.check(os.path.isfile(p), w, "resource %s does not exist" % r):
            rep.check(p not in tree.patch_files, w, "resource %s is also used as a patch" % r)
            objs.extend(copy.deepcopy(tree.files.get(p, [])))
        if os.path.basename(r).startswith("secret.example"):
            rep.fail(w, "%s must not be a resource (it is an example to copy)" % r)
    # Components: their resources join, then their patches and images apply
    # to everything so far (kustomize's order: resources, components, then
    # this kustomization's own transformers).
    for cpath in (k.get("components") or []):
        cdir = os.path.normpath(os.path.join(kdir, cpath))
        if not rep.check(cdir in tree.kustomizations, w, "component %s has no kustomization" % cpath):
            continue
        if not rep.check(tree.kustomizations[cdir][1].get("kind") == "Component", w,
                         "component %s is not of kind Component" % cpath):
            continue
        objs = render_static(tree, cdir, rep, seen, base_objs=objs)
    patches = []
    for ent in (k.get("patches") or []):
        if not isinstance(ent, dict) or not ent.get("path"):
            rep.fail(w, "patch entry %r: only file patches (path:) are checked" % (ent,))
            continue
        patches.append((ent["path"], ent.get("target")))
    for ent in (k.get("patchesStrategicMerge") or []):
        patches.append((ent, None))
    for path, target in patches:
        p = os.path.normpath(os.path.join(kdir, path))
        if not rep.check(os.path.isfile(p), w, "patch %s does not exist" % path):
            continue
        for pd in tree.files.get(p, []):
            t = dict(target or {})
            kind = t.get("kind") or pd.get("kind")
            name = t.get("name") or get(pd, "metadata.name")
            group, version = t.get("group"), t.get("version")

            def api_ok(api):
                g, _, v = str(api).rpartition("/")  # "apps/v1" -> apps, v1; "v1" -> "", v1
                return (group is None or g == group) and (version is None or v == version)

            hits = [o for o in objs if o.get("kind") == kind and get(o, "metadata.name") == name
                    and api_ok(o.get("apiVersion"))]
            if not rep.check(len(hits) == 1, w, "patch %s: patch target %s/%s not found in the resources"
                             % (path, kind, name)):
                continue
            if t and (pd.get("kind") not in (None, kind) or get(pd, "metadata.name") not in (None, name)):
                rep.fail(w, "patch %s: its kind/name differ from its target" % path)
            idx = objs.index(hits[0])
            objs[idx] = smp_merge(hits[0], pd)
    for img in (k.get("images") or []):
        for o in objs:
            for c in pod_containers(o):
                name, tag = image_split(str(c.get("image", "")))
                if name != img.get("name"):
                    continue
                new = img.get("newName", name)
                if img.get("digest"):
                    new += "@" + img["digest"]
                elif img.get("newTag") is not None:
                    new += ":" + str(img["newTag"])
                elif tag:
                    new += tag
                c["image"] = new
    return objs


def image_split(image):
    """("registry/name", ":tag" or "@digest" or "")."""
    if "@" in image:
        i = image.index("@")
        return image[:i], image[i:]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        i = len(image) - len(last) + last.index(":")
        return image[:i], image[i:]
    return image, ""


def pod_template(o):
    """The pod template of a workload object, or None."""
    kind = o.get("kind")
    if kind in ("StatefulSet", "Deployment", "Job", "DaemonSet"):
        return get(o, "spec.template")
    if kind == "CronJob":
        return get(o, "spec.jobTemplate.spec.template")
    if kind == "RayCluster":
        return get(o, "spec.headGroupSpec.template")
    return None


def pod_containers(o):
    t = pod_template(o) or {}
    return list(get(t, "spec.containers", []) or []) + list(get(t, "spec.initContainers", []) or [])


def check_kustomization_extras(tree, kdir, objs, rep):
    kpath, k = tree.kustomizations[kdir]
    w = tree.where(kpath)
    for img in (k.get("images") or []):
        names = [c.get("image", "").split(":")[0].split("@")[0]
                 for o in objs if o.get("kind") == "StatefulSet"
                 for c in get(o, "spec.template.spec.containers", []) or []]
        rep.check(img.get("name") in names, w,
                  "images: %r matches no container image (%s)" % (img.get("name"), ", ".join(names)))
    if k.get("commonLabels"):
        rep.note("%s uses commonLabels: it also rewrites selectors (immutable on a StatefulSet)" % w)
    for lab in (k.get("labels") or []):
        if lab.get("includeSelectors"):
            rep.note("%s: labels with includeSelectors change the StatefulSet selector" % w)


# ------------------------------------------------------------ bundle checks

class Bundle:
    def __init__(self, name, objs, parent=None):
        self.name = name
        self.objs = objs
        self.parent = parent

    def of(self, kind):
        return [o for o in self.objs if o.get("kind") == kind]

    def named(self, kind, name):
        for o in self.of(kind):
            if get(o, "metadata.name") == name:
                return o
        return None


def env_map(container):
    return {e.get("name"): e for e in (container.get("env") or []) if isinstance(e, dict)}


def env_value(container, name):
    e = env_map(container).get(name)
    if e is None or "value" not in e:
        return None
    return str(e["value"])


def resolve_port(container, port):
    """Container port number for a Service targetPort / probe port."""
    for p in container.get("ports") or []:
        if isinstance(port, str) and not port.isdigit() and p.get("name") == port:
            return p.get("containerPort")
        if str(p.get("containerPort")) == str(port):
            return p.get("containerPort")
    return None


def bundle_parts(b, rep):
    w = b.name
    sts_list = b.of("StatefulSet")
    if not rep.check(len(sts_list) == 1, w, "expected one StatefulSet, found %d" % len(sts_list)):
        return None
    sts = sts_list[0]
    containers = get(sts, "spec.template.spec.containers", []) or []
    c = next((x for x in containers if x.get("name") == "gcsd"), containers[0] if containers else None)
    if not rep.check(c is not None, w, "StatefulSet has no containers"):
        return None
    return sts, c


def check_bundle(b, rep, flags, run_scripts=True):
    parts = bundle_parts(b, rep)
    if parts is None:
        return
    sts, c = parts
    w = "%s: StatefulSet %s" % (b.name, get(sts, "metadata.name"))
    pod_labels = get(sts, "spec.template.metadata.labels", {}) or {}
    pod_spec = get(sts, "spec.template.spec", {}) or {}
    replicas = get(sts, "spec.replicas")
    rep.check(isinstance(replicas, int) and replicas >= 1, w, "spec.replicas %r" % replicas)
    if not isinstance(replicas, int):
        replicas = 1

    rep.check(labels_match(get(sts, "spec.selector"), pod_labels), w,
              "spec.selector does not match the pod template labels")
    rep.check(sts["spec"].get("podManagementPolicy") == "Parallel", w,
              "podManagementPolicy must be Parallel (members must start together for the first "
              "election; OrderedReady waits forever for gcsd-0 to be ready)")

    # ---- ports and env
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    for need in ("client", "raft", "http"):
        rep.check(need in ports, w, "container port %r missing" % need)
    env = env_map(c)
    for name in env:
        if name and name.startswith("GCSD_"):
            twins = {t for t, _ in flags.values() if t}
            rep.check(name in twins or name in SCRIPT_VARS, w,
                      "env %s is neither a gcsd flag twin nor read by the startup script (typo?)" % name)
            rep.check(name not in PER_POD_TWINS, w,
                      "env %s must not be set: the startup script derives it per pod "
                      "(gcsd would also see it, e.g. GCSD_PEERS together with --join)" % name)
    names = [e.get("name") for e in c.get("env") or []]
    rep.check(len(names) == len(set(names)), w, "duplicate env names: %s" %
              sorted({n for n in names if names.count(n) > 1}))

    def env_int(name):
        v = env_value(c, name)
        if not rep.check(v is not None and v.isdigit(), w, "env %s must be set to a number (got %r)" % (name, v)):
            return None
        return int(v)

    client_port = env_int("GCSD_PORT")
    raft_port = env_int("GCSD_RAFT_PORT")
    http_port = env_int("GCSD_HTTP_PORT")
    initial = env_int("GCSD_INITIAL_MEMBERS")
    env_replicas = env_int("GCSD_REPLICAS")
    rep.check(client_port is None or ports.get("client") == client_port, w,
              "GCSD_PORT %s != container port client %s" % (client_port, ports.get("client")))
    rep.check(raft_port is None or ports.get("raft") == raft_port, w,
              "GCSD_RAFT_PORT %s != container port raft %s" % (raft_port, ports.get("raft")))
    rep.check(http_port is None or ports.get("http") == http_port, w,
              "GCSD_HTTP_PORT %s != container port http %s" % (http_port, ports.get("http")))
    rep.check(env_value(c, "GCSD_BIND") == "0.0.0.0", w,
              "GCSD_BIND must be 0.0.0.0 (pods are reached on their pod IP)")
    rep.check(env_replicas is None or env_replicas == replicas, w,
              "GCSD_REPLICAS=%s but spec.replicas=%s: change both together" % (env_replicas, replicas))
    if initial is not None:
        rep.check(1 <= initial <= replicas, w,
                  "GCSD_INITIAL_MEMBERS=%s must be between 1 and spec.replicas=%s" % (initial, replicas))
        rep.check(initial % 2 == 1, w, "GCSD_INITIAL_MEMBERS=%s: an even group tolerates no more "
                  "failures than one member fewer" % initial)
        if b.parent is None:
            rep.check(initial == replicas, w, "base: GCSD_INITIAL_MEMBERS=%s must equal spec.replicas=%s "
                      "(a fresh cluster bootstraps all its members)" % (initial, replicas))
    if b.parent is not None:
        pparts = bundle_parts(b.parent, Report(quiet=True))
        if pparts:
            psts, pc = pparts
            # An overlay either grows a cluster of its base's (the same
            # GCSD_INITIAL_MEMBERS) or is a cluster of its own, bootstrapped
            # whole at its size (dev: 1).
            rep.check(env_value(pc, "GCSD_INITIAL_MEMBERS") == env_value(c, "GCSD_INITIAL_MEMBERS")
                      or initial == replicas, w,
                      "GCSD_INITIAL_MEMBERS differs from the base (%s vs %s) and from spec.replicas: it "
                      "describes the first bootstrap and never changes" % (env_value(c, "GCSD_INITIAL_MEMBERS"),
                                                                          env_value(pc, "GCSD_INITIAL_MEMBERS")))
            for f in ("spec.selector", "spec.serviceName", "metadata.name", "spec.volumeClaimTemplates"):
                rep.check(get(psts, f) == get(sts, f), w, "%s differs from the base (immutable)" % f)

    # ---- data volume
    data_dir = env_value(c, "GCSD_DATA_DIR")
    vct = [get(v, "metadata.name") for v in get(sts, "spec.volumeClaimTemplates", []) or []]
    mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts") or []}
    rep.check(data_dir is not None and any(
        n in mounts and (data_dir == mounts[n] or data_dir.startswith(mounts[n].rstrip("/") + "/"))
        for n in vct), w, "GCSD_DATA_DIR %r is not on a volumeClaimTemplate mount" % data_dir)

    # ---- password
    pw = env.get("GCSD_REQUIREPASS")
    secret_ref = get(pw or {}, "valueFrom.secretKeyRef")
    rep.check(secret_ref is not None and secret_ref.get("name") and secret_ref.get("key"), w,
              "GCSD_REQUIREPASS must come from a Secret (valueFrom.secretKeyRef)")
    rep.check(not (secret_ref or {}).get("optional"), w,
              "the password Secret must not be optional (without it gcsd would refuse remote clients)")

    # ---- probes
    probes = {k: c.get(k) for k in ("readinessProbe", "livenessProbe", "startupProbe")}
    want = {"readinessProbe": "/readyz", "livenessProbe": "/livez", "startupProbe": "/livez"}
    for k, path in want.items():
        pr = probes.get(k)
        if not rep.check(isinstance(pr, dict) and isinstance(pr.get("httpGet"), dict), w,
                         "%s must be an httpGet probe" % k):
            continue
        got = pr["httpGet"].get("path")
        what = {"readinessProbe": "readiness", "livenessProbe": "liveness", "startupProbe": "startup"}[k]
        rep.check(got == path, w, "%s probe path %r, want %r%s" % (
            what, got, path, " (liveness must never depend on quorum)" if k == "livenessProbe" else ""))
        port = resolve_port(c, pr["httpGet"].get("port"))
        rep.check(port is not None and port == http_port, w,
                  "%s probe port %r is not the HTTP port %s" % (what, pr["httpGet"].get("port"), http_port))

    # ---- service links: a Service named gcsd* would inject GCSD_PORT=tcp://...,
    # GCSD_SERVICE_HOST, ... into the pods, next to gcsd's own GCSD_* twins.
    clashing = [get(s_, "metadata.name") for s_ in b.of("Service")
                if str(get(s_, "metadata.name", "")).upper().replace("-", "_").startswith("GCSD")]
    if clashing:
        rep.check(pod_spec.get("enableServiceLinks") is False, w,
                  "enableServiceLinks must be false: Services %s would inject GCSD_* variables "
                  "(GCSD_PORT=tcp://...) that gcsd reads as flags" % clashing)

    # ---- pod hygiene
    tgp = pod_spec.get("terminationGracePeriodSeconds")
    rep.check(isinstance(tgp, int) and tgp >= 10, w,
              "terminationGracePeriodSeconds %r: a leader needs time to hand leadership over" % tgp)
    psc = pod_spec.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    rep.check(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), w, "runAsNonRoot must be true")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    rep.check(isinstance(uid, int) and uid > 0, w, "runAsUser must be a non-zero uid")
    rep.check(csc.get("readOnlyRootFilesystem") is True, w, "readOnlyRootFilesystem must be true")
    rep.check(csc.get("allowPrivilegeEscalation") is False, w, "allowPrivilegeEscalation must be false")
    rep.check(psc.get("fsGroup") is not None, w, "fsGroup must be set (the data volume must be writable)")
    res = c.get("resources") or {}
    rep.check(get(res, "requests.cpu") and get(res, "requests.memory") and get(res, "limits.memory"),
              w, "resources: cpu/memory requests and a memory limit are expected")
    sa = pod_spec.get("serviceAccountName")
    sao = b.named("ServiceAccount", sa) if sa else None
    rep.check(sao is not None, w, "serviceAccountName %r is not defined" % sa)
    rep.check(pod_spec.get("automountServiceAccountToken") is False
              or (sao is not None and sao.get("automountServiceAccountToken") is False), w,
              "the service account token must not be mounted")
    for t in get(pod_spec, "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution", []) or []:
        rep.check(labels_match(get(t, "podAffinityTerm.labelSelector"), pod_labels), w,
                  "podAntiAffinity labelSelector does not select the gcsd pods")
    rep.check(bool(get(pod_spec, "affinity.podAntiAffinity")), w, "podAntiAffinity expected")
    tsc = pod_spec.get("topologySpreadConstraints") or []
    rep.check(bool(tsc), w, "topologySpreadConstraints expected")
    for t in tsc:
        rep.check(labels_match(t.get("labelSelector"), pod_labels), w,
                  "topologySpreadConstraints labelSelector does not select the gcsd pods")

    # ---- Services
    svc_name = get(sts, "spec.serviceName")
    headless = b.named("Service", svc_name)
    if rep.check(headless is not None, w, "serviceName %r names no Service" % svc_name):
        hw = "%s: Service %s" % (b.name, svc_name)
        rep.check(get(headless, "spec.clusterIP") == "None", hw,
                  "the StatefulSet's serviceName must be a headless Service (clusterIP: None)")
        rep.check(get(headless, "spec.publishNotReadyAddresses") is True, hw,
                  "publishNotReadyAddresses must be true (members resolve each other before any is ready)")
        hports = {resolve_port(c, p.get("targetPort", p.get("port"))) for p in get(headless, "spec.ports", []) or []}
        rep.check(ports.get("raft") in hports and ports.get("client") in hports, hw,
                  "the headless Service must carry the client and raft ports")
    rep.check(env_value(c, "GCSD_PEER_SERVICE") == svc_name, w,
              "GCSD_PEER_SERVICE %r != spec.serviceName %r" % (env_value(c, "GCSD_PEER_SERVICE"), svc_name))
    client_svc_name = env_value(c, "GCSD_CLIENT_SERVICE")
    client_svc = b.named("Service", client_svc_name)
    if rep.check(client_svc is not None, w, "GCSD_CLIENT_SERVICE %r names no Service" % client_svc_name):
        cw = "%s: Service %s" % (b.name, client_svc_name)
        rep.check(get(client_svc, "spec.clusterIP") != "None", cw, "the client Service must not be headless")
        cps = [p for p in get(client_svc, "spec.ports", []) or []
               if resolve_port(c, p.get("targetPort", p.get("port"))) == ports.get("client")]
        rep.check(any(p.get("port") == client_port for p in cps), cw,
                  "the client Service needs port %s to the client port (--join uses it)" % client_port)
        mps = [p for p in get(client_svc, "spec.ports", []) or []
               if resolve_port(c, p.get("targetPort", p.get("port"))) == ports.get("http")]
        rep.check(bool(mps), cw, "the client Service should expose the metrics port")
    for s in b.of("Service"):
        sw = "%s: Service %s" % (b.name, get(s, "metadata.name"))
        rep.check(labels_match(get(s, "spec.selector"), pod_labels), sw,
                  "selector %s does not select the gcsd pods %s" % (get(s, "spec.selector"), pod_labels))
        for p in get(s, "spec.ports", []) or []:
            tp = p.get("targetPort", p.get("port"))
            rep.check(resolve_port(c, tp) is not None, sw,
                      "port %s: targetPort %r is no container port" % (p.get("name"), tp))
            if resolve_port(c, tp) is not None and isinstance(tp, str):
                rep.check(p.get("port") == resolve_port(c, tp), sw,
                          "port %s: service port %s differs from container port %s (confusing)"
                          % (p.get("name"), p.get("port"), resolve_port(c, tp)))

    # ---- PodDisruptionBudget
    pdbs = b.of("PodDisruptionBudget")
    if rep.check(len(pdbs) >= 1, b.name, "a PodDisruptionBudget is expected"):
        for pdb in pdbs:
            pw_ = "%s: PodDisruptionBudget %s" % (b.name, get(pdb, "metadata.name"))
            rep.check(labels_match(get(pdb, "spec.selector"), pod_labels), pw_,
                      "selector does not select the gcsd pods")
            quorum_slack = (replicas - 1) // 2
            mu = get(pdb, "spec.maxUnavailable")
            ma = get(pdb, "spec.minAvailable")
            if replicas == 1:
                # A lone member has no quorum to keep: the budget must still
                # let a node drain evict it, or the drain waits forever.
                rep.check(mu == 1 or mu == "100%" or ma == 0, pw_,
                          "a single member: the PDB must allow its eviction (maxUnavailable: 1), "
                          "or node drains block forever")
            elif mu is not None:
                if isinstance(mu, str) and mu.endswith("%"):
                    mu = -(-replicas * int(mu[:-1]) // 100)  # rounded up, as Kubernetes does
                rep.check(isinstance(mu, int) and 1 <= mu <= quorum_slack, pw_,
                          "maxUnavailable %r loses quorum: with %d replicas at most %d may be down"
                          % (get(pdb, "spec.maxUnavailable"), replicas, quorum_slack))
            if ma is not None and replicas > 1:
                if isinstance(ma, str) and ma.endswith("%"):
                    ma = replicas * int(ma[:-1]) // 100
                rep.check(isinstance(ma, int) and replicas // 2 + 1 <= ma < replicas, pw_,
                          "minAvailable %r does not keep a quorum of %d replicas" % (ma, replicas))

    # ---- NetworkPolicy
    nps = [n for n in b.of("NetworkPolicy") if labels_match(get(n, "spec.podSelector"), pod_labels)]
    if rep.check(len(nps) >= 1, b.name, "a NetworkPolicy selecting the gcsd pods is expected"):
        raft_ok = client_ok = False
        for n in nps:
            nw = "%s: NetworkPolicy %s" % (b.name, get(n, "metadata.name"))
            rep.check("Ingress" in (get(n, "spec.policyTypes") or []), nw, "policyTypes must include Ingress")
            for ri, rule in enumerate(get(n, "spec.ingress", []) or []):
                rports = rule.get("ports")
                covered = set()
                if not rports:
                    covered = set(ports.values())
                else:
                    for p in rports:
                        if p.get("endPort") is not None and isinstance(p.get("port"), int):
                            covered |= {v for v in ports.values() if p["port"] <= v <= p["endPort"]}
                        else:
                            covered.add(resolve_port(c, p.get("port")))
                peers = rule.get("from")
                only_gcsd = bool(peers) and all(
                    set(pe) == {"podSelector"} and labels_match(pe["podSelector"], pod_labels) for pe in peers)
                if ports.get("raft") in covered:
                    rep.check(only_gcsd, nw, "ingress rule %d opens the raft port %s to more than the gcsd pods"
                              % (ri, ports.get("raft")))
                    raft_ok = raft_ok or only_gcsd
                if ports.get("client") in covered:
                    for pe in peers or [{}]:
                        sel = pe.get("podSelector")
                        ok = sel is not None and (labels_match(sel, pod_labels) or (
                            set((sel.get("matchLabels") or {}).items()) >= {CLIENT_LABEL}
                            and not sel.get("matchExpressions")))
                        rep.check(ok, nw, "ingress rule %d opens the client port %s to %s: only the gcsd "
                                  "pods and pods labelled %s=%s may reach it"
                                  % (ri, ports.get("client"), pe or "everyone", CLIENT_LABEL[0], CLIENT_LABEL[1]))
                    if any(set(pe) == {"podSelector"} and labels_match(pe["podSelector"], pod_labels)
                           for pe in peers or []):
                        client_ok = True
        rep.check(raft_ok, b.name, "no NetworkPolicy rule lets the gcsd pods reach each other's raft port")
        rep.check(client_ok, b.name, "no NetworkPolicy rule lets the gcsd pods reach each other's client "
                  "port (followers forward commands to the leader's)")

    # ---- other workloads: clients of the client port (the backup CronJob)
    image = c.get("image")
    for o in b.objs:
        if o is sts or pod_template(o) is None:
            continue
        check_client_workload(o, b, "%s: %s %s" % (b.name, o.get("kind"), get(o, "metadata.name")),
                              rep, c, image)

    if run_scripts:
        check_startup_script(b, sts, c, flags, rep, w)


def check_client_workload(o, b, w, rep, c, image=None):
    """A Job/CronJob (or the Ray head) that talks to gcsd's client port: it
    must carry the client label the NetworkPolicy admits, use gcsd's
    password Secret, run the StatefulSet's image, and run restricted."""
    t = pod_template(o) or {}
    labels = get(t, "metadata.labels", {}) or {}
    rep.check(labels.get(CLIENT_LABEL[0]) == CLIENT_LABEL[1], w,
              "its pods lack the label %s: \"%s\" the NetworkPolicy admits to the client port"
              % CLIENT_LABEL)
    if o.get("kind") == "RayCluster":
        return
    spec = t.get("spec") or {}
    want = get(env_map(c).get("GCSD_REQUIREPASS") or {}, "valueFrom.secretKeyRef") or {}
    client_svc = env_value(c, "GCSD_CLIENT_SERVICE")
    for cc in spec.get("containers") or []:
        cw = "%s: container %s" % (w, cc.get("name"))
        if image is not None:
            rep.check(cc.get("image") == image, cw, "image %r differs from the StatefulSet's %r (set the "
                      "image with the kustomization's images: so both follow)" % (cc.get("image"), image))
        env = env_map(cc)
        got = get(env.get("GCSCTL_PASSWORD") or {}, "valueFrom.secretKeyRef") or {}
        rep.check(got.get("name") == want.get("name") and got.get("key") == want.get("key"), cw,
                  "GCSCTL_PASSWORD must come from gcsd's password Secret %s/%s" % (want.get("name"), want.get("key")))
        host = env_value(cc, "GCSCTL_HOST") or ""
        rep.check(host == client_svc or host.startswith(client_svc + "."), cw,
                  "GCSCTL_HOST %r is not the client Service %r" % (host, client_svc))
        rep.check(env_value(cc, "GCSCTL_PORT") == env_value(c, "GCSD_PORT"), cw,
                  "GCSCTL_PORT %r is not the client port %r" % (env_value(cc, "GCSCTL_PORT"), env_value(c, "GCSD_PORT")))
        csc = cc.get("securityContext") or {}
        rep.check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False,
                  cw, "readOnlyRootFilesystem true and allowPrivilegeEscalation false expected")
    psc = spec.get("securityContext") or {}
    rep.check(psc.get("runAsNonRoot") is True, w, "runAsNonRoot must be true")
    rep.check(spec.get("automountServiceAccountToken") is False, w, "the service account token must not be mounted")
    rep.check(spec.get("enableServiceLinks") is False, w,
              "enableServiceLinks must be false (GCSD_* variables from the Service gcsd)")
    if o.get("kind") == "CronJob":
        rep.check(get(o, "spec.concurrencyPolicy") == "Forbid", w, "concurrencyPolicy must be Forbid "
                  "(two backups at once double the load for nothing)")
        script = " ".join(" ".join(map(str, (cc.get("command") or []) + (cc.get("args") or [])))
                          for cc in spec.get("containers") or [])
        rep.check(re.search(r"\bgcsctl backup\b", script) is not None, w, "the CronJob must run `gcsctl backup`")
        mounts = {m.get("name"): m.get("mountPath") for cc in spec.get("containers") or []
                  for m in cc.get("volumeMounts") or []}
        for v in spec.get("volumes") or []:
            claim = get(v, "persistentVolumeClaim.claimName")
            if claim is None:
                continue
            rep.check(b is None or b.named("PersistentVolumeClaim", claim) is not None, w,
                      "volume %s: PersistentVolumeClaim %r is not defined" % (v.get("name"), claim))
            rep.check(v.get("name") in mounts and mounts[v.get("name")] in script, w,
                      "the backup must be written to the PVC's mount (%s)" % mounts.get(v.get("name")))


def check_overlays(deploy_dir, bundles, rep):
    for name, want in sorted(EXPECTED_OVERLAYS.items()):
        kd = os.path.join(deploy_dir, "overlays", name)
        b = bundles.get(kd)
        if not rep.check(b is not None, "deploy/overlays", "overlay %s (%d members) is missing" % (name, want)):
            continue
        parts = bundle_parts(b, Report(quiet=True))
        got = get(parts[0], "spec.replicas") if parts else None
        rep.check(got == want, b.name, "spec.replicas %r, want %d" % (got, want))
    prod = bundles.get(os.path.join(deploy_dir, "overlays", "prod"))
    if prod is not None:
        rep.check(any(o.get("kind") == "CronJob" for o in prod.objs), prod.name,
                  "prod must include the backup CronJob (components/backup)")
        parts = bundle_parts(prod, Report(quiet=True))
        req = get(parts[0], "spec.template.spec.affinity.podAntiAffinity."
                  "requiredDuringSchedulingIgnoredDuringExecution", []) if parts else []
        pod_labels = get(parts[0], "spec.template.metadata.labels", {}) if parts else {}
        rep.check(any(t.get("topologyKey") == "kubernetes.io/hostname"
                      and labels_match(t.get("labelSelector"), pod_labels) for t in req or []), prod.name,
                  "prod must require members on distinct nodes (required podAntiAffinity on the hostname)")


# --------------------------------------------------- startup script simulation

# Stand-ins, in sh so that hundreds of runs stay fast. The fake gcsd
# records its arguments and environment, NUL-separated.
FAKE_GCSD = """#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >"$FAKE_GCSD_OUT.argv"
env -0 >"$FAKE_GCSD_OUT.env"
"""

# The fake redis-cli records each call (REDISCLI_AUTH, then its arguments)
# and answers from $FAKE_REDIS_DIR/<host>:<port>:<COMMAND> when that file
# exists; otherwise it cannot connect.
FAKE_REDIS_CLI = """#!/bin/sh
n=$(ls "$FAKE_REDIS_OUT".* 2>/dev/null | wc -l)
{ printf '%s\\0' "${REDISCLI_AUTH-}"; for a in "$@"; do printf '%s\\0' "$a"; done; } >"$FAKE_REDIS_OUT.$n"
host=127.0.0.1 port=6379
while [ $# -gt 0 ]; do
  case $1 in
    -h) host=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
f="$FAKE_REDIS_DIR/$host:$port:$1"
if [ -f "$f" ]; then cat "$f"; exit 0; fi
echo "Could not connect to Redis at $host:$port: Connection refused" >&2
exit 1
"""


def raft_status_text(my_id, last, members):
    """RAFT.STATUS as redis-cli prints it to a pipe (one element a line).
    members: [(id, role, match_index)]."""
    lines = ["id", str(my_id), "role", "follower", "term", "5", "leader_id", "1",
             "leader_address", "", "leader_raft_address", "", "commit_index", str(last),
             "applied_index", str(last), "last_index", str(last), "snapshots", "0",
             "failed", "0", "failure", "", "members"]
    for mid, role, match in members:
        lines += ["id", str(mid), "raft_address", "h%d:16379" % mid, "client_address", "",
                  "role", role, "match_index", str(match)]
    return "\n".join(lines) + "\n"


def container_env(c, pod, ns, password):
    """The environment Kubernetes gives the container (in order, with
    $(VAR) expansion of values), for a pod named `pod`."""
    env = {}
    for e in c.get("env") or []:
        name = e.get("name")
        if "value" in e:
            env[name] = k8s_expand(str(e.get("value")), env)
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            fp = get(vf, "fieldRef.fieldPath")
            if fp == "metadata.name":
                env[name] = pod
            elif fp == "metadata.namespace":
                env[name] = ns
            elif fp == "status.podIP":
                env[name] = "10.0.0.%d" % (sum(map(ord, pod)) % 250 + 1)
            elif "secretKeyRef" in vf:
                env[name] = password
            else:
                env[name] = "unknown-%s" % name
        else:
            env[name] = ""
    env.setdefault("HOSTNAME", pod)
    return env


def run_startup(c, pod, ns, password, tmp, answers=None, data="fresh"):
    """Run the container's startup script as the pod `pod` would, with a
    fake gcsd and redis-cli first on PATH. answers: {"host:port:COMMAND":
    reply text} for the fake redis-cli; data: "fresh" (empty data dir) or
    "used" (a raft log exists). Returns (result, error)."""
    argv = list(c.get("command") or []) + list(c.get("args") or [])
    if len(argv) < 3 or not argv[0].endswith("sh") or argv[1] not in ("-c", "-ec", "-euc", "-ce"):
        return None, "the container command must be [/bin/sh, -c, <script>], got %r" % (argv[:2],)
    env = container_env(c, pod, ns, password)
    argv = [k8s_expand(a, env) for a in argv]
    data_dir = os.path.join(tmp, "data-" + data)
    os.makedirs(os.path.join(data_dir, "raft"), exist_ok=True)
    if data == "used":
        open(os.path.join(data_dir, "raft", "metadata1"), "w").close()
    out = os.path.join(tmp, "gcsd-out")
    rout = os.path.join(tmp, "redis-cli-out")
    for f in os.listdir(tmp):
        if f.startswith(("gcsd-out", "redis-cli-out")):
            os.unlink(os.path.join(tmp, f))
    rdir = os.path.join(tmp, "answers")
    shutil.rmtree(rdir, ignore_errors=True)
    os.mkdir(rdir)
    for key, text in (answers or {}).items():
        with open(os.path.join(rdir, key), "w") as f:
            f.write(text)
    run_env = dict(env)
    run_env.update(PATH=os.path.join(tmp, "bin") + ":/usr/bin:/bin", FAKE_GCSD_OUT=out,
                   FAKE_REDIS_OUT=rout, FAKE_REDIS_DIR=rdir, GCSD_DATA_DIR=data_dir,
                   GCSD_SURVEY_RETRIES="2", GCSD_SURVEY_PAUSE="0")
    try:
        # /bin/sh as in the image (dash on Debian), never the caller's shell.
        p = subprocess.run(["/bin/sh"] + argv[1:], env=run_env, capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, "the startup script did not finish within 30 s"
    result = {"rc": p.returncode, "stderr": p.stderr.strip(), "stdout": p.stdout.strip(),
              "argv": None, "env": None, "redis_cli": [], "data_dir": data_dir}
    if os.path.exists(out + ".argv") and os.path.exists(out + ".env"):
        with open(out + ".argv", encoding="utf-8", errors="replace") as f:
            result["argv"] = f.read().split("\0")[:-1]
        with open(out + ".env", encoding="utf-8", errors="replace") as f:
            result["env"] = dict(x.partition("=")[::2] for x in f.read().split("\0")[:-1])
    calls = sorted((f for f in os.listdir(tmp) if f.startswith("redis-cli-out.")),
                   key=lambda f: int(f.rsplit(".", 1)[1]))
    for f in calls:
        with open(os.path.join(tmp, f), encoding="utf-8", errors="replace") as fh:
            fields = fh.read().split("\0")[:-1]
        result["redis_cli"].append({"auth": fields[0] if fields else None, "argv": fields[1:]})
    return result, None


def startup_scenarios(sts_name, peer_svc, client_svc, domain, initial, replicas, cport, k):
    """What the other members answer when pod k starts, and what pod k must
    then do. Yields (title, answers, data, want): want["mode"] is "peers"
    or "join", want["remove"] whether it must RAFT.REMOVE itself first,
    want["rc"] "ok" or "fail", want["quiet"] that it asks nobody."""
    me = k + 1
    n = max(replicas, initial)
    others = [i for i in range(n) if i != k]

    def host(i):
        return "%s-%d.%s.%s.svc.%s:%s" % (sts_name, i, peer_svc, TEST_NS, domain, cport)

    client = "%s.%s.svc.%s:%s" % (client_svc, TEST_NS, domain, cport)
    first = "peers" if k < initial else "join"
    # The configuration holds every pod up to this one (a pod beyond
    # spec.replicas is a member too once added).
    everyone = [(i + 1, "voter", 0) for i in range(max(n, k + 1))]
    counted = [(mid, role, 450 if mid == me else 500) for mid, role, _ in everyone]
    without_me = [m for m in everyone if m[0] != me]

    def status(answering, last, members):
        return {host(i) + ":RAFT.STATUS": raft_status_text(i + 1, last, members) for i in answering}

    yield ("first start, nobody answers", {}, "fresh", dict(mode=first, remove=False, rc="ok"))
    if n == 1:
        # A single member (the dev overlay) has nobody to ask: an empty data
        # dir makes a new, empty cluster, as on the first start.
        yield ("a single member, lost its data", {}, "fresh", dict(mode=first, remove=False, rc="ok"))
        yield ("restart on its own volume", {}, "used", dict(mode=first, remove=False, rc="ok", quiet=True))
        return
    yield ("first start, the others bootstrapped", status(others, 1, everyone), "fresh",
           dict(mode=first, remove=False, rc="ok"))
    ans = status(others, 500, everyone)
    ans[client + ":RAFT.REMOVE"] = "OK\n"
    yield ("lost its data, the leader does not count on it (a new leader)", ans, "fresh",
           dict(mode="join", remove=True, rc="ok"))
    ans = status(others, 500, counted)
    ans[client + ":RAFT.REMOVE"] = "OK\n"
    yield ("lost its data, the leader counts entries on it", ans, "fresh",
           dict(mode="join", remove=True, rc="ok"))
    ans = dict(ans)
    ans[client + ":RAFT.REMOVE"] = "ERR a membership change is already in progress; retry when it is done\n"
    yield ("lost its data, RAFT.REMOVE refused", ans, "fresh", dict(mode=None, remove=True, rc="fail"))
    yield ("removed earlier, back on a fresh volume", status(others, 500, without_me), "fresh",
           dict(mode="join", remove=False, rc="ok"))
    yield ("a majority of the volumes lost", status(others[:1], 500, counted), "fresh",
           dict(mode="join", remove=False, rc="ok", confirm=True))
    yield ("restart on its own volume", status(others, 500, counted), "used",
           dict(mode=first, remove=False, rc="ok", quiet=True))


_SCRIPT_CACHE = {}


def check_startup_script(b, sts, c, flags, rep, w):
    """Runs the simulation once per distinct container (the kubectl-rendered
    bundles repeat the static ones, env order aside) and reports its
    findings under this bundle's name."""
    env = c.get("env") or []
    if not any("$(" in str(e.get("value", "")) for e in env):
        env = sorted(env, key=lambda e: str(e.get("name")))
    key = json.dumps({"name": get(sts, "metadata.name"), "replicas": get(sts, "spec.replicas"),
                      "command": c.get("command"), "args": c.get("args"), "env": env,
                      "ports": c.get("ports")}, sort_keys=True, default=str)
    if key not in _SCRIPT_CACHE:
        sub = Report(quiet=True)
        simulate_startup_script(sts, c, flags, sub)
        _SCRIPT_CACHE[key] = (sub.checks, sub.errors)
    checks, errors = _SCRIPT_CACHE[key]
    rep.checks += checks
    rep.errors.extend(w + e for e in errors)


def simulate_startup_script(sts, c, flags, rep):
    w = ""
    sts_name = get(sts, "metadata.name")
    replicas = get(sts, "spec.replicas") or 1
    peer_svc = env_value(c, "GCSD_PEER_SERVICE")
    client_svc = env_value(c, "GCSD_CLIENT_SERVICE")
    domain = env_value(c, "GCSD_CLUSTER_DOMAIN") or "cluster.local"
    initial = int(env_value(c, "GCSD_INITIAL_MEMBERS") or 0)
    want_ports = {p.get("name"): str(p.get("containerPort")) for p in c.get("ports") or []}

    def fqdn(k):
        return "%s-%d.%s.%s.svc.%s" % (sts_name, k, peer_svc, TEST_NS, domain)

    want_peers = ",".join("%d=%s:%s" % (i + 1, fqdn(i), want_ports.get("raft"))
                          for i in range(initial))
    join_host = "%s.%s.svc.%s" % (client_svc, TEST_NS, domain)
    want_join = "%s:%s" % (join_host, want_ports.get("client"))
    member_hosts = {fqdn(i) for i in range(max(replicas, initial, ORDINALS))}

    tmp = tempfile.mkdtemp(prefix="gcsd-validate-")
    try:
        os.mkdir(os.path.join(tmp, "bin"))
        for name, body in (("gcsd", FAKE_GCSD), ("redis-cli", FAKE_REDIS_CLI)):
            with open(os.path.join(tmp, "bin", name), "w") as f:
                f.write(body)
            os.chmod(os.path.join(tmp, "bin", name), stat.S_IRWXU)
        def n_others(k):
            return max(replicas, initial) - (1 if k < max(replicas, initial) else 0)

        for k in range(max(ORDINALS, replicas)):
            pod = "%s-%d" % (sts_name, k)
            for title, answers, data, want in startup_scenarios(
                    sts_name, peer_svc, client_svc, domain, initial, replicas, want_ports.get("client"), k):
                sw = "%s: startup script, pod %s, %s" % (w, pod, title)
                r, err = run_startup(c, pod, TEST_NS, TEST_PASSWORD, tmp, answers, data)
                if not rep.check(r is not None, sw, err or ""):
                    return
                # redis-cli: authenticated, never with the password in argv;
                # only RAFT.STATUS of members and RAFT.REMOVE of itself.
                removes = []
                for call in r["redis_cli"]:
                    a = call["argv"]
                    rep.check(call["auth"] == TEST_PASSWORD, sw, "redis-cli must authenticate (REDISCLI_AUTH)")
                    rep.check(TEST_PASSWORD not in " ".join(a), sw,
                              "the password must not be on redis-cli's command line")
                    h = a[a.index("-h") + 1] if "-h" in a and a.index("-h") + 1 < len(a) else None
                    pt = a[a.index("-p") + 1] if "-p" in a and a.index("-p") + 1 < len(a) else None
                    rep.check(pt == want_ports.get("client"), sw, "redis-cli asked port %r, not the client port" % pt)
                    cmd, i = [], 0
                    while i < len(a):
                        if a[i] in ("-h", "-p"):
                            i += 2
                            continue
                        cmd.append(a[i])
                        i += 1
                    if cmd[:1] == ["RAFT.STATUS"]:
                        rep.check(h in member_hosts, sw, "RAFT.STATUS asked of %r, not a member's pod name" % h)
                    elif cmd[:1] == ["RAFT.REMOVE"]:
                        removes.append((h, cmd[1:]))
                    else:
                        rep.fail(sw, "unexpected redis-cli call %s" % a)
                if want.get("confirm"):
                    asked = [call for call in r["redis_cli"] if "RAFT.STATUS" in call["argv"]]
                    rep.check(len(asked) > n_others(k), sw,
                              "ordinal %d: must confirm a lost-majority verdict by asking again (a view taken "
                              "during the first election can be lopsided), asked %d times" % (k, len(asked)))
                if want.get("quiet"):
                    rep.check(not r["redis_cli"], sw, "a member with data must start without asking anyone")
                if want["remove"]:
                    rep.check(removes == [(join_host, [str(k + 1)])], sw,
                              "ordinal %d: must RAFT.REMOVE %d through %s once, did %s"
                              % (k, k + 1, join_host, removes))
                else:
                    rep.check(not removes, sw, "ordinal %d: must not RAFT.REMOVE anything, did %s" % (k, removes))
                if want["rc"] == "fail":
                    rep.check(r["rc"] != 0 and r["argv"] is None, sw,
                              "ordinal %d: must exit with an error (the pod restarts and retries), "
                              "not start gcsd" % k)
                    continue
                if not rep.check(r["rc"] == 0 and r["argv"] is not None, sw,
                                 "did not exec gcsd (exit %s): %s" % (r["rc"], r["stderr"][-400:])):
                    continue
                settings, errs = gcsd_effective_config(r["argv"], r["env"], flags)
                for e in errs:
                    rep.fail(sw, "gcsd would reject its arguments %s: %s" % (r["argv"], e))
                expect = {
                    "id": str(k + 1),
                    "raft-advertise": fqdn(k),
                    "advertise": fqdn(k),
                    "port": want_ports.get("client"),
                    "raft-port": want_ports.get("raft"),
                    "http-port": want_ports.get("http"),
                    "bind": "0.0.0.0",
                    "requirepass": TEST_PASSWORD,
                    "data-dir": r["data_dir"],
                }
                if want["mode"] == "peers":
                    expect.update(peers=want_peers, join=None)
                else:
                    expect.update(join=want_join, peers=None)
                for name, val in expect.items():
                    got = settings.get(name)
                    rep.check(got == val, sw, "ordinal %d: --%s is %r, want %r" % (k, name, got, val))
                rep.check(TEST_PASSWORD not in " ".join(r["argv"]), sw,
                          "the password must not be on gcsd's command line (visible in ps)")
                rep.check(TEST_PASSWORD not in r["stderr"] + r["stdout"], sw, "the script prints the password")
        # Refusals: no ordinal in the pod name; no password.
        r, _ = run_startup(c, sts_name, TEST_NS, TEST_PASSWORD, tmp)
        rep.check(r is not None and r["rc"] != 0 and r["argv"] is None, w + ": startup script",
                  "a pod name without an ordinal must make the script fail, not start gcsd")
        if "GCSD_REQUIREPASS" in env_map(c):
            r, _ = run_startup(c, "%s-0" % sts_name, TEST_NS, "", tmp)
            rep.check(r is not None and r["rc"] != 0 and r["argv"] is None, w + ": startup script",
                      "an empty password without GCSD_PROTECTED_MODE=no must make the script fail "
                      "(protected mode would refuse the other members)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------- other artefacts

def check_raycluster(tree, base, rep):
    rcs = [(p, d) for p, docs in tree.files.items() for d in docs if d.get("kind") == "RayCluster"]
    if not rep.check(rcs, "deploy/examples", "a RayCluster example is expected"):
        return
    parts = bundle_parts(base, Report(quiet=True)) if base else None
    for p, rc in rcs:
        w = tree.where(p)
        opts = get(rc, "spec.gcsFaultToleranceOptions") or {}
        addr = str(opts.get("redisAddress", ""))
        rep.check("ray.io/ft-enabled" not in (get(rc, "metadata.annotations") or {}), w,
                  "the ray.io/ft-enabled annotation and gcsFaultToleranceOptions exclude each other")
        rep.check(opts.get("backend", "redis") == "redis", w, "backend must be redis")
        groups = [get(rc, "spec.headGroupSpec")] + list(get(rc, "spec.workerGroupSpecs") or [])
        for g in groups:
            rsp = (g or {}).get("rayStartParams") or {}
            rep.check("redis-password" not in rsp, w, "rayStartParams redis-password is set by KubeRay")
            for cc in get(g or {}, "template.spec.containers", []) or []:
                for e in cc.get("env") or []:
                    rep.check(e.get("name") not in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS"), w,
                              "env %s is set by KubeRay from gcsFaultToleranceOptions" % e.get("name"))
        if parts is None:
            continue
        sts, c = parts
        check_client_workload(rc, base, w + ": the head group", rep, c)
        client_svc = env_value(c, "GCSD_CLIENT_SERVICE")
        svc = base.named("Service", client_svc)
        m = re.fullmatch(r"(?:redis://)?([A-Za-z0-9.-]+):(\d+)", addr)
        if rep.check(m is not None, w, "redisAddress %r is not host:port" % addr):
            host, port = m.group(1), int(m.group(2))
            rep.check(host == client_svc or host.startswith(client_svc + "."), w,
                      "redisAddress %r does not name the client Service %r" % (addr, client_svc))
            rep.check(host.count(".") in (0, 1) or host.endswith(".svc.cluster.local"), w,
                      "redisAddress host %r: use <service>.<namespace>.svc.cluster.local" % host)
            sports = [pp.get("port") for pp in get(svc or {}, "spec.ports", []) or []]
            rep.check(port in sports and port == int(env_value(c, "GCSD_PORT") or 0), w,
                      "redisAddress port %s is not the client Service's client port" % port)
        want = get(env_map(c).get("GCSD_REQUIREPASS") or {}, "valueFrom.secretKeyRef") or {}
        got = get(opts, "redisPassword.valueFrom.secretKeyRef") or {}
        rep.check(got.get("name") == want.get("name") and got.get("key") == want.get("key"), w,
                  "redisPassword secretKeyRef %s/%s differs from gcsd's password Secret %s/%s"
                  % (got.get("name"), got.get("key"), want.get("name"), want.get("key")))


def check_secret_example(tree, base, rep):
    parts = bundle_parts(base, Report(quiet=True)) if base else None
    if parts is None:
        return
    ref = get(env_map(parts[1]).get("GCSD_REQUIREPASS") or {}, "valueFrom.secretKeyRef") or {}
    secrets = [(p, d) for p, docs in tree.files.items() for d in docs if d.get("kind") == "Secret"]
    ok = [p for p, d in secrets if get(d, "metadata.name") == ref.get("name")
          and ref.get("key") in ((d.get("stringData") or {}).keys() | (d.get("data") or {}).keys())]
    rep.check(ok, "deploy/base", "an example Secret %s with key %s is expected (secret.example.yaml)"
              % (ref.get("name"), ref.get("key")))


def dockerignore_excluded(patterns, path):
    """Docker's .dockerignore semantics, enough for our patterns: last match
    wins, ! re-includes, a pattern also matches everything below it."""
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.strip("/")
        parts = path.split("/")
        hit = False
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (pat.startswith("**/") and (
                    fnmatch.fnmatchcase(parts[i - 1], pat[3:]) or fnmatch.fnmatchcase(prefix, pat[3:]))):
                hit = True
                break
        if hit:
            excluded = not neg
    return excluded


def check_dockerfile(root, deploy_dir, rep):
    path = os.path.join(deploy_dir, "Dockerfile")
    w = rel(root, path) if deploy_dir.startswith(root) else "deploy/Dockerfile"
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        rep.fail(w, "missing")
        return
    lines = []
    cur = ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
    stages = []
    for op, arg in instr:
        if op == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", arg, re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "ops": []})
        elif stages:
            stages[-1]["ops"].append((op, arg))
    if not rep.check(len(stages) >= 2, w, "a multi-stage build is expected"):
        return
    build, final = stages[0], stages[-1]
    rep.check(re.fullmatch(r"debian:bookworm(-\d+)?", build["image"]) is not None, w,
              "build stage must be debian:bookworm, got %s" % build["image"])
    rep.check(final["image"].startswith("debian:bookworm") and "slim" in final["image"], w,
              "runtime stage must be debian:bookworm-slim, got %s" % final["image"])
    brun = " ".join(a for o, a in build["ops"] if o == "RUN")
    rep.check("scripts/deps.sh" in brun, w, "the build stage must run scripts/deps.sh")
    rep.check(re.search(r"meson setup\b", brun) and re.search(r"(--buildtype[= ]release|-Dbuildtype=release)", brun),
              w, "the build stage must run meson setup with the release buildtype")
    rep.check("-Dtests=false" in brun, w, "-Dtests=false: Criterion is not needed to build the image")
    rep.check("ninja" in brun or "meson compile" in brun, w, "the build stage must build with ninja")
    frun = " ".join(a for o, a in final["ops"] if o == "RUN")
    try:
        with open(os.path.join(root, "scripts", "deps.sh")) as f:
            deps = f.read()
    except OSError:
        deps = ""
    m = re.search(r"PACKAGES=\((.*?)\)", deps, re.S)
    pkgs = set(re.sub(r"#.*", "", m.group(1)).split()) if m else set()
    for dev, lib in RUNTIME_LIBS.items():
        if dev in pkgs or not pkgs:
            rep.check(re.search(r"(^|\s)%s(\s|$)" % re.escape(lib), frun) is not None, w,
                      "runtime stage must install %s (built against %s)" % (lib, dev))
    rep.check(re.search(r"(^|\s)redis-tools(\s|$)", frun) is not None, w,
              "runtime stage must install redis-tools (gcsd-cli and the docs use redis-cli)")
    rep.check("ldconfig" in frun, w, "runtime stage must run ldconfig (libraft in /usr/local/lib)")
    froms = [a for o, a in final["ops"] if o == "COPY" and "--from=" in a]
    rep.check(froms, w, "runtime stage must copy the build results --from the build stage")
    btext = " ".join(a for o, a in build["ops"])
    rep.check("libraft" in btext + " ".join(froms), w, "libraft's shared library must reach the image")
    users = [a for o, a in final["ops"] if o == "USER"]
    uid = users[-1].split(":")[0] if users else ""
    rep.check(uid.isdigit() and int(uid) > 0, w, "USER must be a numeric non-root uid, got %r" % uid)
    expose = set()
    for o, a in final["ops"]:
        if o == "EXPOSE":
            expose |= {x.split("/")[0] for x in a.split()}
    rep.check({"6379", "16379", "8080"} <= expose, w, "EXPOSE 6379 16379 8080 expected, got %s" % sorted(expose))
    ep = [a for o, a in final["ops"] if o == "ENTRYPOINT"]
    rep.check(ep and "gcsd" in ep[-1], w, "ENTRYPOINT must be gcsd")
    # COPY sources must exist in the context (the repository root) and
    # survive Dockerfile.dockerignore.
    ign = []
    ipath = path + ".dockerignore"
    if os.path.exists(ipath):
        with open(ipath) as f:
            ign = [l.strip() for l in f if l.strip() and not l.strip().startswith("#")]
    rep.check(not os.path.exists(os.path.join(root, ".dockerignore")), "/.dockerignore",
              "a .dockerignore at the repository root is not wanted (use deploy/Dockerfile.dockerignore)")
    needed = ["meson.build", "meson_options.txt", "scripts/deps.sh", "deploy/gcsd-cli"]
    try:
        with open(os.path.join(root, "meson.build")) as f:
            mtext = f.read()
        for sd in re.findall(r"^\s*subdir\('([^']+)'\)", mtext, re.M):
            needed.append(sd + "/meson.build")
    except OSError:
        pass
    for st in stages:
        for o, a in st["ops"]:
            if o != "COPY" or "--from=" in a:
                continue
            srcs = [x for x in a.split() if not x.startswith("--")][:-1]
            for s in srcs:
                if s in (".", "./"):
                    continue
                rep.check(os.path.exists(os.path.join(root, s)), w, "COPY source %s does not exist" % s)
                rep.check(not dockerignore_excluded(ign, s.rstrip("/")), w,
                          "COPY source %s is excluded by Dockerfile.dockerignore" % s)
    if any(o == "COPY" and re.match(r"\.\s", a) for st in stages for o, a in st["ops"]):
        for n in needed:
            if n.startswith(("tests/", "fuzz/")):
                continue  # only with -Dtests=true / -Dfuzz=true
            rep.check(not dockerignore_excluded(ign, n), w,
                      "%s is needed by the build but excluded by Dockerfile.dockerignore" % n)
            rep.check(os.path.exists(os.path.join(root, n)) or n.startswith("deploy/"), w,
                      "%s is needed by the build but does not exist" % n)
    cli = os.path.join(deploy_dir, "gcsd-cli")
    if "gcsd-cli" in text and rep.check(os.path.isfile(cli), w, "deploy/gcsd-cli is installed but missing"):
        p = subprocess.run(["/bin/sh", "-n", cli], capture_output=True, text=True)
        rep.check(p.returncode == 0, "deploy/gcsd-cli", "sh -n: %s" % p.stderr.strip())


def check_docs(root, deploy_dir, rep):
    path = os.path.join(root, "docs", "kubernetes.md")
    if not rep.check(os.path.isfile(path), "docs/kubernetes.md", "missing"):
        return
    with open(path) as f:
        text = f.read()
    for ref in sorted(set(re.findall(r"(?<![\w/.-])deploy/[A-Za-z0-9_./-]*[A-Za-z0-9_-]", text))):
        p = os.path.join(os.path.dirname(deploy_dir), ref)
        rep.check(os.path.exists(p), "docs/kubernetes.md", "refers to %s, which does not exist" % ref)
    for word in ("RAFT.REMOVE", "/readyz", "/metrics", "quorum", "NetworkPolicy", "GCSD_INITIAL_MEMBERS"):
        rep.check(word in text, "docs/kubernetes.md", "does not explain %s" % word)


# ------------------------------------------------------------------- driver

def kubectl_render(kdir, rep):
    try:
        p = subprocess.run(["kubectl", "kustomize", kdir], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        rep.fail(kdir, "kubectl kustomize: %s" % e)
        return None
    if p.returncode != 0:
        if "unknown command" in p.stderr:
            rep.note("this kubectl has no kustomize: rendered checks skipped")
            return None
        rep.fail(kdir, "kubectl kustomize failed: %s" % p.stderr.strip()[-600:])
        return None
    try:
        return [d for d in yaml.safe_load_all(p.stdout) if isinstance(d, dict)]
    except yaml.YAMLError as e:
        rep.fail(kdir, "kubectl kustomize output does not parse: %s" % e)
        return None


def schema_dir():
    return os.environ.get("GCSD_SCHEMA_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "gcsd", "k8s-schema")


def check_schemas(root, items, rep):
    """Every (where, object) against the Kubernetes API schemas, with
    tests/deploy/schema/check.cjs and the npm package kubernetes-models
    that scripts/deps.sh installs into schema_dir()."""
    sdir = schema_dir()
    script = os.path.join(root, "tests", "deploy", "schema", "check.cjs")
    node = shutil.which("node")
    if not rep.check(node is not None and os.path.isdir(os.path.join(sdir, "node_modules", "kubernetes-models")),
                     "schema", "the Kubernetes API schemas are not installed (node, and kubernetes-models in "
                     "%s): run scripts/deps.sh, or pass --no-schema" % sdir):
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"where": w, "object": o} for w, o in items], f)
        path = f.name
    try:
        p = subprocess.run([node, script, sdir, path], capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(path)
    lines = p.stdout.splitlines()
    for line in lines:
        if line.startswith("FAIL "):
            rep.fail("schema", line[5:])
        elif line.startswith("skip "):
            rep.note("schema: " + line[5:])
        elif line.startswith("schema: "):
            rep.note(line)
    rep.check(p.returncode == 0 or any(l.startswith("FAIL ") for l in lines), "schema",
              "check.cjs failed: %s" % (p.stderr.strip()[-600:] or p.returncode))
    rep.check(any(l.startswith("schema: ") for l in lines), "schema", "check.cjs printed no summary")


def validate(root, deploy_dir, rep, use_kubectl=True, docs=True, scripts="all", schema=True):
    """scripts: run the startup-script simulation for "all" bundles, only
    for "base", or "none". schema: check every rendered object against the
    Kubernetes API schemas."""
    flags = gcsd_flags(root, rep)
    if not rep.check(os.path.isdir(deploy_dir), "deploy", "directory missing"):
        return
    tree = Tree(deploy_dir, rep)
    check_objects(tree, rep)
    rep.check(os.path.join(deploy_dir, "base") in tree.kustomizations, "deploy/base",
              "kustomization.yaml missing")
    bundles = {}
    # Bases first, so overlays can be compared with them.
    def depends(kd):
        _, k = tree.kustomizations[kd]
        return [os.path.normpath(os.path.join(kd, r)) for r in (k.get("resources") or [])
                if os.path.normpath(os.path.join(kd, r)) in tree.kustomizations]
    def depth(kd, seen=()):
        if kd in seen:
            return 0
        return 1 + max([depth(d, seen + (kd,)) for d in depends(kd)] or [0])
    # Components are rendered inside the kustomizations that include them.
    order = sorted((kd for kd in tree.kustomizations if tree.kustomizations[kd][1].get("kind") != "Component"),
                   key=lambda kd: (depth(kd), kd))
    for kd in order:
        objs = render_static(tree, kd, rep)
        check_kustomization_extras(tree, kd, objs, rep)
        parents = [bundles[d] for d in depends(kd) if d in bundles]
        b = Bundle(tree.where(kd), objs, parents[0] if parents else None)
        bundles[kd] = b
        check_bundle(b, rep, flags, run_scripts=scripts == "all" or (
            scripts == "base" and kd == os.path.join(deploy_dir, "base")))
    base = bundles.get(os.path.join(deploy_dir, "base"))
    schema_items = [(b.name, o) for b in bundles.values() for o in b.objs]
    if use_kubectl:
        if shutil.which("kubectl"):
            rendered = {}
            for kd in order:
                objs = kubectl_render(kd, rep)
                if objs is None:
                    continue
                parents = [rendered[d] for d in depends(kd) if d in rendered]
                b = Bundle("kubectl kustomize " + tree.where(kd), objs, parents[0] if parents else None)
                rendered[kd] = b
                schema_items.extend((b.name, o) for o in objs)
                check_bundle(b, rep, flags, run_scripts=scripts == "all")
                # The static rendering must agree with kustomize's on what matters.
                sp, rp = bundle_parts(bundles[kd], Report(quiet=True)), bundle_parts(b, Report(quiet=True))
                if sp and rp:
                    for f in ("spec.replicas", "spec.serviceName", "spec.selector"):
                        rep.check(get(sp[0], f) == get(rp[0], f), b.name,
                                  "%s differs between kustomize (%r) and the static rendering (%r)"
                                  % (f, get(rp[0], f), get(sp[0], f)))
                    rep.check(env_map(sp[1]) == env_map(rp[1]), b.name,
                              "container env differs between kustomize and the static rendering")
                ids = lambda bb: sorted((o.get("kind"), get(o, "metadata.name"),
                                         tuple(c.get("image") for c in pod_containers(o))) for o in bb.objs)
                rep.check(ids(bundles[kd]) == ids(b), b.name,
                          "objects or images differ between kustomize %s and the static rendering %s"
                          % (ids(b), ids(bundles[kd])))
        else:
            rep.note("kubectl not found: `kubectl kustomize` rendering skipped")
    check_raycluster(tree, base, rep)
    check_overlays(deploy_dir, bundles, rep)
    bparts = bundle_parts(base, Report(quiet=True)) if base else None
    for p, docs in tree.files.items():
        if "/examples/" not in p:
            continue
        for d in docs:
            if d.get("kind") in ("Job", "CronJob") and bparts:
                check_client_workload(d, base, "%s: %s %s" % (tree.where(p), d.get("kind"),
                                      get(d, "metadata.name")), rep, bparts[1])
    check_secret_example(tree, base, rep)
    check_dockerfile(root, deploy_dir, rep)
    if schema:
        # The examples are applied as they are (kubectl apply -f).
        for p, docs in tree.files.items():
            if "/examples/" in p or os.path.basename(p).startswith("secret.example"):
                schema_items.extend((tree.where(p), d) for d in docs if isinstance(d, dict))
        check_schemas(root, schema_items, rep)
    if docs:
        check_docs(root, deploy_dir, rep)


# ---------------------------------------------------------------- self-test

def _yaml_edit(rel_path, fn):
    def apply(d):
        p = os.path.join(d, rel_path)
        with open(p) as f:
            docs = list(yaml.safe_load_all(f))
        if fn(docs) is False:
            raise RuntimeError("mutation no longer applies to %s" % rel_path)
        with open(p, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
    return apply


def _text_edit(rel_path, old, new):
    def apply(d):
        p = os.path.join(d, rel_path)
        with open(p) as f:
            text = f.read()
        if old not in text:
            raise RuntimeError("mutation no longer applies: %r not in %s" % (old, rel_path))
        with open(p, "w") as f:
            f.write(text.replace(old, new, 1))
    return apply


def _container(docs):
    for d in docs:
        if d and d.get("kind") == "StatefulSet":
            return d["spec"]["template"]["spec"]["containers"][0]
    raise RuntimeError("no StatefulSet")


def _script_edit(old, new):
    def fn(docs):
        c = _container(docs)
        if old not in c["command"][2]:
            return False
        c["command"][2] = c["command"][2].replace(old, new)
    return _yaml_edit("base/statefulset.yaml", fn)


def _env_edit(name, value):
    def fn(docs):
        c = _container(docs)
        for e in c["env"]:
            if e["name"] == name:
                e["value"] = value
                return
        c["env"].append({"name": name, "value": value})
    return fn


def _dev_pdb_zero(d):
    """The dev overlay patches its PDB to maxUnavailable: 0."""
    with open(os.path.join(d, "overlays", "dev", "pdb.yaml"), "w") as f:
        f.write("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: gcsd\n"
                "spec:\n  maxUnavailable: 0\n")
    with open(os.path.join(d, "overlays", "dev", "kustomization.yaml"), "a") as f:
        f.write("  - path: pdb.yaml\n    target:\n      group: policy\n      version: v1\n"
                "      kind: PodDisruptionBudget\n      name: gcsd\n")


def _sts(docs):
    return next(d for d in docs if d and d.get("kind") == "StatefulSet")


MUTATIONS = [
    ("headless Service hides not-ready members",
     _text_edit("base/service-peers.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false"),
     "publishNotReadyAddresses"),
    ("serviceName names the client Service",
     _text_edit("base/statefulset.yaml", "serviceName: gcsd-peers", "serviceName: gcsd"), "headless"),
    ("a Service targets a port that does not exist",
     _text_edit("base/service-client.yaml", "targetPort: client", "targetPort: clients"), "targetPort"),
    ("readiness probe on a wrong path",
     _text_edit("base/statefulset.yaml", "path: /readyz", "path: /ready"), "readiness"),
    ("liveness probe depends on quorum",
     _yaml_edit("base/statefulset.yaml", lambda docs: _container(docs)["livenessProbe"]["httpGet"]
                .update(path="/readyz")), "liveness"),
    ("PDB lets a quorum go",
     _text_edit("base/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2"), "quorum"),
    ("overlay raises replicas but not GCSD_REPLICAS",
     _text_edit("overlays/prod-5/statefulset-replicas.yaml", 'value: "5"', 'value: "3"'), "GCSD_REPLICAS"),
    ("overlay changes GCSD_INITIAL_MEMBERS",
     _yaml_edit("overlays/prod-5/statefulset-replicas.yaml",
                _env_edit("GCSD_INITIAL_MEMBERS", "1")), "GCSD_INITIAL_MEMBERS"),
    ("script numbers peers from 0",
     _script_edit("$((i + 1))=", "$i="), "--peers"),
    ("script bootstraps one member too many",
     _script_edit('if [ "$ordinal" -lt "$initial" ]', 'if [ "$ordinal" -le "$initial" ]'), "--join"),
    ("script advertises the pod name only",
     _script_edit('--raft-advertise "$me"', '--raft-advertise "$pod"'), "--raft-advertise"),
    ("script passes the password on the command line",
     _script_edit('exec gcsd --id', 'exec gcsd --requirepass "$GCSD_REQUIREPASS" --id'), "command line"),
    ("script never asks the others",
     _script_edit('if [ "$fresh" = yes ]; then\n  survey', 'if false; then\n  survey'),
     "RAFT.REMOVE"),
    ("script bootstraps over a lost majority",
     _script_edit('elif [ "$with_log" -lt $((voters / 2 + 1)) ]; then', 'elif false; then'),
     "majority of the volumes lost"),
    ("script trusts a lopsided first view",
     _script_edit('[ "$tries" -lt "${GCSD_SURVEY_RETRIES:-10}" ]; do', '[ "$tries" -lt 0 ]; do'),
     "confirm a lost-majority"),
    ("script keeps a lost member the leader counts on",
     _script_edit('elif [ "$best" -gt 0 ]; then', 'elif false; then'), "RAFT.REMOVE"),
    ("script rejoins only when the leader counts on it",
     _script_edit('elif [ "$best" -gt 0 ]; then', 'elif [ "$match" -gt 1 ]; then'), "RAFT.REMOVE"),
    ("script ignores a used data dir",
     _script_edit('fresh=yes\n', 'fresh=yes\n              fi\n              if true; then fresh=yes\n'),
     "without asking"),
    ("GCSD_PEERS set in the manifest",
     _yaml_edit("base/statefulset.yaml", _env_edit("GCSD_PEERS", "1=x:16379")), "GCSD_PEERS"),
    ("env twin with a typo",
     _yaml_edit("base/statefulset.yaml", _env_edit("GCSD_HTTPPORT", "8080")), "typo"),
    ("resource file missing",
     _text_edit("base/kustomization.yaml", "- pdb.yaml", "- pdb-missing.yaml"), "does not exist"),
    ("example Secret listed as a resource",
     _text_edit("base/kustomization.yaml", "- pdb.yaml", "- pdb.yaml\n  - secret.example.yaml"),
     "secret.example"),
    ("overlay patch targets a missing object",
     _yaml_edit("overlays/prod-5/kustomization.yaml",
                lambda docs: docs[0]["patches"][0]["target"].update(name="gcsd-x")), "patch target"),
    ("raft port open to the namespace",
     _yaml_edit("base/networkpolicy.yaml",
                lambda docs: docs[0]["spec"]["ingress"][1]["ports"].append({"port": 16379})), "raft port"),
    ("pod labels no longer match the selectors",
     _yaml_edit("base/statefulset.yaml", lambda docs: _sts(docs)["spec"]["template"]["metadata"]["labels"]
                .update({"app.kubernetes.io/name": "gcsd2"})), "select"),
    ("OrderedReady pod management",
     _text_edit("base/statefulset.yaml", "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady"),
     "Parallel"),
    ("service links left on",
     _text_edit("base/statefulset.yaml", "enableServiceLinks: false", "enableServiceLinks: true"),
     "enableServiceLinks"),
    ("writable root filesystem",
     _text_edit("base/statefulset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
     "readOnlyRootFilesystem"),
    ("RayCluster uses another Secret",
     _yaml_edit("examples/raycluster.yaml", lambda docs: docs[0]["spec"]["gcsFaultToleranceOptions"]
                ["redisPassword"]["valueFrom"]["secretKeyRef"].update(name="other")), "redisPassword"),
    ("RayCluster points at the headless Service",
     _yaml_edit("examples/raycluster.yaml", lambda docs: docs[0]["spec"]["gcsFaultToleranceOptions"]
                .update(redisAddress="gcsd-peers.default.svc.cluster.local:6379")), "client Service"),
    ("image without liblz4",
     _text_edit("Dockerfile", " liblz4-1", ""), "liblz4-1"),
    ("unknown kind",
     _text_edit("base/pdb.yaml", "apiVersion: policy/v1", "apiVersion: policy/v1beta1"), "unknown apiVersion"),
    ("client port open to the namespace",
     _yaml_edit("base/networkpolicy.yaml",
                lambda docs: docs[0]["spec"]["ingress"][1].update({"from": [{"podSelector": {}}]})),
     "client port"),
    ("members cannot reach each other's client port",
     _yaml_edit("base/networkpolicy.yaml", lambda docs: docs[0]["spec"]["ingress"][1]["from"].pop(0)),
     "forward"),
    ("RayCluster head without the client label",
     _text_edit("examples/raycluster.yaml", 'gcsd-client: "true"', 'gcsd-client: "false"'), "gcsd-client"),
    ("backup CronJob without the client label",
     _text_edit("components/backup/cronjob.yaml", 'gcsd-client: "true"', 'team: "x"'), "gcsd-client"),
    ("backup CronJob on another image",
     _text_edit("components/backup/cronjob.yaml", "image: gcsd\n", "image: gcsd-old:0.0.9\n"),
     "differs from the StatefulSet"),
    ("backup written outside its volume",
     _text_edit("components/backup/cronjob.yaml", "dir=/backup", "dir=/tmp"), "PVC's mount"),
    ("member Job with another password",
     _text_edit("examples/member-remove-job.yaml", "name: gcsd-auth", "name: other-auth"), "GCSCTL_PASSWORD"),
    ("prod without backups",
     _text_edit("overlays/prod/kustomization.yaml", "components:\n  - ../../components/backup\n", ""),
     "backup CronJob"),
    ("prod members may share a node",
     _text_edit("overlays/prod/statefulset.yaml", "requiredDuringSchedulingIgnoredDuringExecution",
                "preferredDuringSchedulingIgnoredDuringExecution"), "distinct nodes"),
    ("dev overlay missing",
     lambda d: shutil.rmtree(os.path.join(d, "overlays", "dev")), "overlay dev"),
    ("single member whose PDB blocks drains",
     _dev_pdb_zero, "drains block"),
    ("schema: a misspelt field",
     _yaml_edit("base/statefulset.yaml", lambda docs: _container(docs).update(
         readinesProbe=_container(docs)["readinessProbe"])), "unknown field"),
    ("schema: a value outside its enum",
     _text_edit("components/backup/cronjob.yaml", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfMissing"),
     "allowed values"),
    ("schema: a string where a list belongs",
     _text_edit("components/backup/pvc.yaml", 'accessModes: ["ReadWriteOnce"]', "accessModes: ReadWriteOnce"),
     "must be array"),
    ("schema: a number as a string",
     _text_edit("examples/member-remove-job.yaml", "backoffLimit: 3", 'backoffLimit: "3"'), "must be integer"),
    ("YAML that does not parse",
     _text_edit("base/service-client.yaml", "spec:", "spec: : ["), "parse"),
]


def self_test_one(root, deploy_dir, title, mutate, expect):
    scripts = "base" if title.startswith("script ") else "none"
    schema = title.startswith("schema: ")
    """(problem or None, the message that rejected the broken copy)."""
    tmp = tempfile.mkdtemp(prefix="gcsd-selftest-")
    try:
        d = os.path.join(tmp, "deploy")
        shutil.copytree(deploy_dir, d, symlinks=True)
        try:
            mutate(d)
        except RuntimeError as e:
            return "self-test %r: %s" % (title, e), None
        r = Report(quiet=True)
        validate(root, d, r, use_kubectl=False, docs=False, scripts=scripts, schema=schema)
        if not r.errors:
            return "self-test %r: the broken copy passed validation" % title, None
        hits = [e for e in r.errors if expect in e]
        if not hits:
            return ("self-test %r: rejected, but no message mentions %r: %s"
                    % (title, expect, r.errors[:3])), None
        return None, hits[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def self_test(root, deploy_dir, verbose):
    """Each mutation must make validate() fail with the expected message."""
    import concurrent.futures
    workers = max(2, min(8, os.cpu_count() or 2))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda m: self_test_one(root, deploy_dir, *m), MUTATIONS))
    problems = []
    for (title, _, _), (problem, hit) in zip(MUTATIONS, results):
        if problem:
            problems.append(problem)
        elif verbose:
            print("  self-test %-48s rejected: %s" % (title, hit))
    return problems


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("-")]
    opts = {a for a in argv[1:] if a.startswith("-")}
    unknown = opts - {"--no-kubectl", "--no-self-test", "--no-schema", "-v", "--verbose", "-h", "--help"}
    if unknown or "-h" in opts or "--help" in opts or len(args) > 1:
        print(__doc__.strip().splitlines()[2].strip())
        return 0 if not unknown and len(args) <= 1 else 2
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), "..", ".."))
    deploy_dir = os.path.join(root, "deploy")
    verbose = "-v" in opts or "--verbose" in opts
    rep = Report(verbose=verbose)
    validate(root, deploy_dir, rep, use_kubectl="--no-kubectl" not in opts, schema="--no-schema" not in opts)
    for n in rep.notes:
        print("note: " + n)
    problems = []
    if "--no-self-test" not in opts:
        if rep.errors:
            print("self-test skipped: the tree itself does not validate")
        else:
            problems = self_test(root, deploy_dir, verbose)
    for e in rep.errors + problems:
        print("FAIL " + e)
    if rep.errors or problems:
        print("deploy validation: %d problem(s) in %d checks" % (len(rep.errors) + len(problems), rep.checks))
        return 1
    print("deploy validation: OK, %d checks%s" % (
        rep.checks, "" if "--no-self-test" in opts else ", %d broken copies rejected" % len(MUTATIONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

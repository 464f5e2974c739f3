// Validates Kubernetes objects against the API schemas of the npm package
// kubernetes-models (its generated validators: types, enums, required
// fields, formats), and rejects fields the API does not define, as
// `kubectl apply` does by default (strict field validation). The field lists
// come from the package's type declarations (.d.ts), which mirror the same
// OpenAPI schemas.
//
//   node check.cjs MODULES_DIR OBJECTS.json
//
// MODULES_DIR holds node_modules/kubernetes-models (scripts/deps.sh
// installs it; see package.json here). OBJECTS.json is a list of
// {"where": "...", "object": {...}}. Prints one line per problem and
// "skip <where>: ..." for kinds without a schema here; exits 1 on problems.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [modulesDir, objectsFile] = process.argv.slice(2);
if (!modulesDir || !objectsFile) {
    console.error("usage: node check.cjs MODULES_DIR OBJECTS.json");
    process.exit(2);
}
const req = createRequire(path.join(path.resolve(modulesDir), "package.json"));

// Kinds that are not Kubernetes API objects, or whose schema (a CRD) is not
// in kubernetes-models.
const NO_SCHEMA = {
    "kustomize.config.k8s.io/v1beta1/Kustomization": "a kustomize file, not an API object",
    "kustomize.config.k8s.io/v1alpha1/Component": "a kustomize file, not an API object",
    "ray.io/v1/RayCluster": "KubeRay's CRD schema is not in kubernetes-models",
};

function modelClass(apiVersion, kind) {
    const group = apiVersion.includes("/") ? apiVersion : apiVersion; // "apps/v1" or "v1"
    let mod;
    try {
        mod = req("kubernetes-models/" + group);
    } catch (e) {
        return null;
    }
    return typeof mod[kind] === "function" ? { cls: mod[kind], spec: "kubernetes-models/" + group + "/" + kind } : null;
}

// ---- field lists from the .d.ts files

const parsed = new Map(); // d.ts path -> {fields: Map(name -> {ref, array}), ok}

function dtsOf(jsPath) {
    return jsPath.replace(/\.(c|m)?js$/, ".d.ts");
}

function parseDts(file) {
    if (parsed.has(file)) return parsed.get(file);
    const out = { fields: null, imports: new Map() };
    parsed.set(file, out);
    let text;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        return out;
    }
    for (const m of text.matchAll(/^import \{([^}]*)\} from "([^"]+)";/gm)) {
        for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
            out.imports.set(name, m[2]);
        }
    }
    const start = text.search(/^export interface I\w+(?: extends [\w, ]+)? \{$/m);
    if (start < 0) return out; // a type alias (Quantity, IntOrString, ...): a leaf
    const body = text.slice(start).split("\n");
    out.fields = new Map();
    for (let i = 1; i < body.length && body[i] !== "}"; i++) {
        const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(body[i]);
        if (!m) continue;
        const t = /^(Array<)?(I\w+)>?;$/.exec(m[2]);
        out.fields.set(m[1], t ? { ref: t[2], array: !!t[1] } : { ref: null });
    }
    return out;
}

function resolveRef(fromFile, name) {
    const info = parseDts(fromFile);
    const spec = info.imports.get(name);
    if (!spec) return null;
    if (spec.startsWith(".")) return path.resolve(path.dirname(fromFile), spec) + ".d.ts";
    try {
        return dtsOf(req.resolve(spec));
    } catch (e) {
        return null;
    }
}

function strict(value, file, where, problems) {
    const info = parseDts(file);
    if (!info.fields || value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [k, v] of Object.entries(value)) {
        const f = info.fields.get(k);
        if (!f) {
            problems.push(`${where}.${k}: unknown field (not in the API schema)`);
            continue;
        }
        if (!f.ref || v === null || typeof v !== "object") continue;
        const sub = resolveRef(file, f.ref);
        if (!sub) continue;
        if (f.array && Array.isArray(v)) v.forEach((x, i) => strict(x, sub, `${where}.${k}[${i}]`, problems));
        else if (!f.array) strict(v, sub, `${where}.${k}`, problems);
    }
}

// ---- main

const items = JSON.parse(fs.readFileSync(objectsFile, "utf8"));
const problems = [];
let checked = 0;
for (const { where, object } of items) {
    const api = object && object.apiVersion, kind = object && object.kind;
    const key = `${api}/${kind}`;
    if (NO_SCHEMA[key]) {
        console.log(`skip ${where}: ${key}: ${NO_SCHEMA[key]}`);
        continue;
    }
    const m = typeof api === "string" && typeof kind === "string" ? modelClass(api, kind) : null;
    if (!m) {
        problems.push(`${where}: ${key}: no such kind in the Kubernetes API`);
        continue;
    }
    checked++;
    try {
        new m.cls(object).validate();
    } catch (e) {
        for (const line of String(e.message).split(/, (?=data)/)) {
            problems.push(`${where}: ${kind} ${object.metadata && object.metadata.name}: ${line.replace(/^data/, "")}`);
        }
    }
    strict(object, dtsOf(req.resolve(m.spec)), `${where}: ${kind} ${object.metadata && object.metadata.name}: `, problems);
}
for (const p of problems) console.log("FAIL " + p.replace(/: \./, ": "));
console.log(`schema: ${checked} object(s) checked, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
